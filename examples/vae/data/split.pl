#!/usr/bin/perl
# split.pl DIR — the 8x8 digits (digits.csv.gz beside this script: 1,797 rows of
# 64 pixel counts 0..16 and the label) as the CmdStan JSON the VAE reads:
# DIR/train.json and DIR/test.json, a deterministic split stratified by label
# (of each digit's images in file order, every fifth is held out: 5th, 10th,
# ...; 355 test, 1,442 train), and
# DIR/train.labels, DIR/test.labels (one label a line) for the latent classifier
# and the picture. No randomness, so every run and machine has the same split.
use strict;
use warnings;
use File::Basename qw(dirname);

my $out = shift // die "usage: split.pl DIR\n";
my $src = dirname(__FILE__) . "/digits.csv.gz";
open(my $in, '-|', 'gzip', '-dc', $src) or die "split.pl: $src: $!\n";
my (%x, %lab, %seen);
my $row = 0;
while (my $line = <$in>) {
  chomp $line;
  my @v = split /,/, $line;
  die "split.pl: $src:" . ($row + 1) . ": expected 65 columns\n" unless @v == 65;
  my $label = pop @v;
  my $set = ++$seen{$label} % 5 == 0 ? 'test' : 'train';
  push @{ $lab{$set} }, $label;
  push @{ $x{$set} }, '[' . join(',', @v) . ']';
  $row++;
}
close $in or die "split.pl: gzip failed on $src\n";
for my $set ('train', 'test') {
  open(my $j, '>', "$out/$set.json") or die "split.pl: $out/$set.json: $!\n";
  printf $j "{\"N\": %d,\n\"x\": [\n%s\n]}\n", scalar @{ $x{$set} }, join(",\n", @{ $x{$set} });
  close $j;
  open(my $l, '>', "$out/$set.labels") or die "split.pl: $out/$set.labels: $!\n";
  print $l map { "$_\n" } @{ $lab{$set} };
  close $l;
}
