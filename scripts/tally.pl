#!/usr/bin/perl
# tally.pl testlog.json — counts TAP subtests over a meson test run and prints
# "N passed, N failed" (what CI reads), listing the failures first.
use strict;
use warnings;
use JSON::PP;
my ($pass, $fail, $todo) = (0, 0, 0);
open my $fh, '<', $ARGV[0] or die "cannot read $ARGV[0]: $!\n";
while (my $line = <$fh>) {
  my $t = eval { decode_json($line) } or next;
  my $out = $t->{stdout} // '';
  my $subtests = 0;
  for (split /\n/, $out) {
    if (/^not ok \d+.*# TODO/) { $todo++; $subtests++; print "TODO: $t->{name}: $_\n"; }
    elsif (/^ok \d+/) { $pass++; $subtests++; }
    elsif (/^not ok \d+/) { $fail++; $subtests++; print "FAILED: $t->{name}: $_\n"; }
  }
  # a test without TAP subtests (or one that crashed before any) counts once
  if ($subtests == 0) {
    if ($t->{result} eq 'OK') { $pass++; }
    elsif ($t->{result} ne 'SKIP') { $fail++; print "FAILED: $t->{name}: $t->{result}\n"; }
  } elsif ($t->{result} ne 'OK' && $t->{result} ne 'SKIP' && $t->{result} ne 'FAIL') {
    # crashed or timed out after some subtests
    $fail++;
    print "FAILED: $t->{name}: $t->{result}\n";
  }
}
print "$todo known failures marked TODO (see above)\n" if $todo;
print "$pass passed, $fail failed\n";
