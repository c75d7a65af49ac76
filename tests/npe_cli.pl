#!/usr/bin/perl
# npe_cli.pl — `ppl train --amortize` (whole-program amortization, npe) and
# its draws with `ppl run --load` from the command line (issue 13); TAP.
#
#   perl npe_cli.pl PPL_BINARY
#
# The program is a normal mean with a known sd, mu ~ normal(0, 2),
# y[i] ~ normal(mu, 1) in a plate, whose posterior for N = 10 is exact:
# normal(sum(y) / 10.25, sqrt(1 / 10.25)).
#  - train with a shape file only (N: y is simulated), then run --load on data
#    the network never saw: the draws' mean and sd match the exact ones
#    within 4 Monte Carlo standard errors of the 4000 draws plus the
#    approximation allowance of test_npe.c (0.25 posterior sd on the mean,
#    0.1 on the sd, for a network trained on 3000 simulations);
#  - the selector picks amortized and says why; the summary gives k-hat and
#    the log evidence; --psis-resample resamples; the same seed gives the
#    same draws;
#  - refusals: a file of another program (exit 65), a truncated file (exit
#    65, the file named), a discrete latent (exit 64, why), --load of an npe
#    file in `ppl train` (a run option that does not apply).
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use TapCli;

my ($dir) = tapcli_setup(shift @ARGV);
# mean and sd of a CSV column over files
sub column {
  my ($name, @files) = @_;
  my ($s, $q, $c) = (0, 0, 0);
  for my $f (@files) {
    my @lines = grep { !/^#/ } split /\n/, slurp($f);
    my @h = split /,/, shift @lines;
    my ($k) = grep { $h[$_] eq $name } 0 .. $#h;
    for (@lines) { my $v = (split /,/)[$k]; $s += $v; $q += $v * $v; $c++; }
  }
  my $m = $s / $c;
  return ($m, sqrt(($q - $c * $m * $m) / ($c - 1)), $c);
}

my $prog = <<'EOF';
data { int<lower=1> N; vector[N] y; }
model {
  real mu ~ normal(0, 2);
  plate (i in 1:N) { y[i] ~ normal(mu, 1); }
}
EOF
spit("$dir/conj.ppl", $prog);
(my $other = $prog) =~ s/normal\(0, 2\)/normal(0, 3)/;
spit("$dir/other.ppl", $other);
spit("$dir/shape.json", "{\"N\": 10}\n");
my @y = (1.9, 2.7, 0.4, 1.2, 3.1, 2.2, 1.6, 0.8, 2.5, 1.4);
spit("$dir/obs.json", '{"N": 10, "y": [' . join(', ', @y) . "]}\n");
my $sum = 0;
$sum += $_ for @y;
my ($em, $es) = ($sum / 10.25, sqrt(1 / 10.25));

my @train = ('train', 'conj.ppl', '--amortize', '--data', 'shape.json', '--save', 'conj.params',
             '--simulations', '3000', '--epochs', '40', '--batch', '32', '--embed-dim', '4',
             '--embed-hidden', '32', '--flow-layers', '2', '--flow-hidden', '16', '--seed', '5');
my ($s, $out, $err) = run_cmd(@train);
ok($s == 0 && -s "$dir/conj.params", "train --amortize: exit 0, the file written (status $s)");
ok($out =~ /^trained: 3000 simulations, 40 epochs, held-out loss -?[\d.]+(?:e-?\d+)? in [\d.]+ s; saved conj\.params \(run it with --load conj\.params\)$/m,
   "the last line says what it did: $out");
ok($err =~ /^train: epoch 40\/40 /m, "progress lines count epochs");

my @run = ('run', 'conj.ppl', '--load', 'conj.params', '--data', 'obs.json', '--seed', '7');
($s, $out, $err) = run_cmd(@run, '--output', 'a.csv');
ok($s == 0 && $err =~ /^engine: amortized — --load conj\.params holds a conditional flow trained for this program/m,
   "run --load: the selector picks amortized and says why (status $s)");
my ($m, $sd, $cnt) = column('mu', map { "$dir/a_$_.csv" } 1 .. 4);
my $tm = 4 * $es / sqrt($cnt) + 0.25 * $es, my $ts = 4 * $es / sqrt(2 * $cnt) + 0.1 * $es;
ok($cnt == 4000 && abs($m - $em) < $tm && abs($sd - $es) < $ts,
   sprintf("unseen data: mean %.4f (exact %.4f, tolerance %.4f), sd %.4f (exact %.4f, tolerance %.4f)",
           $m, $em, $tm, $sd, $es, $ts));
ok($out =~ /PSIS k-hat of the draws against the posterior: -?[\d.]+ \(below 0\.5/ && $out =~ /^log evidence/m,
   "the summary: k-hat below 0.5 and the log evidence");
($s) = run_cmd(@run, '--output', 'b.csv', '--quiet');
ok($s == 0 && rows("$dir/a_1.csv") eq rows("$dir/b_1.csv") && rows("$dir/a_1.csv") ne rows("$dir/a_2.csv"),
   "the same seed gives the same draws; chains differ");
($s, $out) = run_cmd(@run, '--chains', '1', '--psis-resample');
ok($s == 0 && $out =~ /importance-resampled/, "--psis-resample");

($s, $out, $err) = run_cmd('run', 'other.ppl', '--load', 'conj.params', '--data', 'obs.json');
ok($s == 65 && $err =~ /trained for another program/, "another program's file: exit 65 ($s): $err");
my $bytes = slurp("$dir/conj.params");
spit("$dir/trunc.params", substr($bytes, 0, length($bytes) / 2));
($s, $out, $err) = run_cmd('run', 'conj.ppl', '--load', 'trunc.params', '--data', 'obs.json');
ok($s == 65 && $err =~ /trunc\.params/, "a truncated file: exit 65, named ($s): $err");
spit("$dir/disc.ppl", "data { int N; int y[N]; }\nmodel { int k ~ poisson(3); plate (i in 1:N) { y[i] ~ poisson(k + 1); } }\n");
($s, $out, $err) = run_cmd('train', 'disc.ppl', '--amortize', '--data', 'shape.json', '--save', 'd.params');
ok($s == 64 && $err =~ /cannot amortize the program: it needs every latent continuous, and 'k' is discrete/,
   "a discrete latent: exit 64, and why ($s): $err");
exit tap_done();
