#!/usr/bin/perl
# report.pl OUT SVG — what run.sh prints and draws from the files it left in
# OUT: the training's speed (the last line of fit.log, `ppl train`'s), the
# ELBO per image of the training and of the held-out images under the trained
# encoder (the "elbo" line of train.csv and test.csv, `ppl run --engine
# amortized`'s); how well the 2-D latent means (the means of the z draws, per
# image) separate the digits: a classifier trained on the training images'
# means and scored on the held-out ones, 5 nearest neighbours (Euclidean; a
# tied vote goes to the nearer) and the nearest class centroid (chance is
# 0.1); and the picture SVG (plain SVG): (a) held-out digits, the first of
# each class, above their reconstructions (the means of xhat, the expected
# counts given z), (b) the held-out images' latent means
# coloured by label.  Perl's core modules only.
use strict;
use warnings;
use JSON::PP;

my ($out, $svgp) = @ARGV;
die "usage: report.pl OUT SVG\n" unless defined $svgp;
sub slurp { open(my $f, '<', $_[0]) or die "report.pl: $_[0]: $!\n"; local $/; <$f> }

# A CmdStan CSV file: its "key = value" comments and each column's mean.
sub csv {
  my ($path) = @_;
  open(my $f, '<', $path) or die "report.pl: $path: $!\n";
  my (%meta, @names, @sum);
  my $rows = 0;
  while (my $line = <$f>) {
    chomp $line;
    if ($line =~ /^#\s*(\w+) = (\S+)$/) { $meta{$1} //= $2; next }
    next if $line =~ /^#/ || $line eq '';
    my @v = split /,/, $line;
    if (!@names) { @names = @v; next }
    $sum[$_] += $v[$_] for 0 .. $#v;
    $rows++;
  }
  die "report.pl: $path has no draws\n" unless $rows;
  my %mean = map { $names[$_] => $sum[$_] / $rows } 0 .. $#names;
  return (\%meta, \%mean);
}

# the latent means, [[z1, z2], ...] in image order
sub latents {
  my ($mean) = @_;
  my @z;
  for (my $i = 1; exists $mean->{"z.$i.1"}; $i++) { push @z, [$mean->{"z.$i.1"}, $mean->{"z.$i.2"}] }
  return \@z;
}

sub labels {
  my ($path, $n) = @_;
  my @l = split /\n/, slurp($path);
  die "report.pl: $path has " . scalar(@l) . " labels for $n images\n" unless @l == $n;
  return \@l;
}

my ($trm, $trmean) = csv("$out/train.csv");
my ($tem, $temean) = csv("$out/test.csv");
my $ztr = latents($trmean);
my $zte = latents($temean);
my $ltr = labels("$out/train.labels", scalar @$ztr);
my $lte = labels("$out/test.labels", scalar @$zte);
my ($trained) = slurp("$out/fit.log") =~ /(trained: [^\n]*)/;
die "report.pl: $out/fit.log has no 'trained:' line\n" unless $trained;
if ($trained =~ /trained: (\d+) steps.*\((\d+) examples\).* in ([0-9.]+) s/ && $3 > 0) {
  printf "training: %d steps in %.1f s, %.0f examples/s\n", $1, $3, $2 / $3;
}
printf "training ELBO per image: %.2f (%d images)\n", $trm->{elbo} / @$ztr, scalar @$ztr;
printf "held-out ELBO per image: %.2f (%d images)\n", $tem->{elbo} / @$zte, scalar @$zte;

# ---- the classifier on the latent means ----
sub d2 { my ($a, $b) = @_; ($a->[0] - $b->[0])**2 + ($a->[1] - $b->[1])**2 }

my (%sum, %cnt);
for my $i (0 .. $#$ztr) {
  my $c = $ltr->[$i];
  $sum{$c}[$_] += $ztr->[$i][$_] for 0, 1;
  $cnt{$c}++;
}
my %cent = map { $_ => [$sum{$_}[0] / $cnt{$_}, $sum{$_}[1] / $cnt{$_}] } keys %cnt;

my ($knn, $cen) = (0, 0);
for my $j (0 .. $#$zte) {
  my $z = $zte->[$j];
  my @near;                     # the 5 nearest so far, [distance, label], nearest first
  for my $i (0 .. $#$ztr) {
    my $e = d2($z, $ztr->[$i]);
    next if @near == 5 && $e >= $near[4][0];
    my $k = @near == 5 ? 4 : scalar @near;
    $k-- while $k > 0 && $near[$k - 1][0] > $e;
    splice @near, $k, 0, [$e, $ltr->[$i]];
    pop @near if @near > 5;
  }
  my %votes;
  $votes{ $near[$_][1] } += 1 + 1e-9 * (5 - $_) for 0 .. 4; # a tie goes to the nearer
  my ($best) = sort { $votes{$b} <=> $votes{$a} } keys %votes;
  $knn++ if $best eq $lte->[$j];
  my ($c) = sort { d2($z, $cent{$a}) <=> d2($z, $cent{$b}) } keys %cent;
  $cen++ if $c eq $lte->[$j];
}
printf "latent classifier accuracy: knn5 %.4f centroid %.4f\n", $knn / @$zte, $cen / @$zte;


# ---- the picture ----
my $x = decode_json(slurp("$out/test.json"))->{x};
my @lab = @$lte;
my $n = @$x;
die "report.pl: $out/test.json has $n images, test.csv " . scalar(@$zte) . "\n" unless $n == @$zte;

# Tableau's ten colours, one per digit
my @col = map { "#$_" } qw(4e79a7 f28e2b e15759 76b7b2 59a14f edc948 b07aa1 ff9da7 9c755f bab0ac);
my ($W, $H) = (640, 700);
my @svg = (qq{<svg xmlns="http://www.w3.org/2000/svg" width="$W" height="$H" viewBox="0 0 $W $H" }
           . qq{font-family="sans-serif" font-size="12">},
           qq{<rect width="$W" height="$H" fill="white"/>});

# (a) originals over reconstructions
my $px = 6;                         # one pixel's side
my ($ax, $ay) = (40, 40);
push @svg, qq{<text x="$ax" y="22" font-size="14">(a) held-out digits (top) and their reconstructions</text>};
my %first;
for my $i (0 .. $n - 1) { $first{ $lab[$i] } //= $i }
sub gray { my $g = int(255 * (1 - $_[0] / 16) + 0.5); $g = 0 if $g < 0; $g = 255 if $g > 255; "rgb($g,$g,$g)" }
for my $d (0 .. 9) {
  my $i = $first{$d} // next;
  for my $row (0, 1) {
    my ($ox, $oy) = ($ax + $d * 9.5 * $px, $ay + $row * 9 * $px);
    for my $p (0 .. 63) {
      my $val = $row == 0 ? $x->[$i][$p] : $temean->{ sprintf "xhat.%d.%d", $i + 1, $p + 1 };
      push @svg, sprintf qq{<rect x="%.1f" y="%.1f" width="%.2f" height="%.2f" fill="%s"/>},
        $ox + ($p % 8) * $px, $oy + int($p / 8) * $px, $px + 0.05, $px + 0.05, gray($val);
    }
  }
}

# (b) the latent means
my ($bx, $by, $bw, $bh) = (60, 200, 440, 440);
my @z = @$zte;
my $lim = 0;
for (@z) { $lim = abs($_->[0]) if abs($_->[0]) > $lim; $lim = abs($_->[1]) if abs($_->[1]) > $lim }
$lim = int($lim + 1);
push @svg, sprintf(qq{<text x="%d" y="%d" font-size="14">(b) latent means of the held-out digits</text>}, $ax, $by - 18),
  qq{<rect x="$bx" y="$by" width="$bw" height="$bh" fill="none" stroke="#888"/>};
my $sx = sub { $bx + ($_[0] + $lim) / (2 * $lim) * $bw };
my $sy = sub { $by + $bh - ($_[0] + $lim) / (2 * $lim) * $bh };
for my $t (-$lim .. $lim) {
  next if $t % ($lim > 4 ? 2 : 1);
  push @svg, sprintf(qq{<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%d</text>}, $sx->($t), $by + $bh + 14, $t),
    sprintf(qq{<text x="%.1f" y="%.1f" text-anchor="end" fill="#555">%d</text>}, $bx - 4, $sy->($t) + 4, $t);
}
push @svg, sprintf(qq{<text x="%.1f" y="%.1f" text-anchor="middle">z1</text>}, $bx + $bw / 2, $by + $bh + 30),
  sprintf(qq{<text x="%.1f" y="%.1f" text-anchor="middle">z2</text>}, $bx - 30, $by + $bh / 2);
for my $i (0 .. $n - 1) {
  push @svg, sprintf qq{<circle cx="%.1f" cy="%.1f" r="2.6" fill="%s" fill-opacity="0.85"/>},
    $sx->($z[$i][0]), $sy->($z[$i][1]), $col[ $lab[$i] ];
}
for my $d (0 .. 9) {            # the legend, right of panel (b)
  my ($lx, $ly) = ($bx + $bw + 30, $by + 20 + $d * 22);
  push @svg, qq{<circle cx="$lx" cy="$ly" r="5" fill="$col[$d]"/>},
    sprintf(qq{<text x="%d" y="%d">%d</text>}, $lx + 9, $ly + 4, $d);
}
push @svg, sprintf(qq{<text x="%d" y="%d" fill="#555">%d held-out images, coloured by their true digit</text>}, $bx, $by + $bh + 50, $n),
  '</svg>';
open(my $o, '>', $svgp) or die "report.pl: $svgp: $!\n";
print $o join("\n", @svg), "\n";
close $o;
