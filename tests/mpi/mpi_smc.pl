#!/usr/bin/perl
# mpi_smc.pl — one smc chain's particles split over the ranks of
# `mpirun -n R` (issue 18, inference/smc_mpi.c); TAP.
#
#   perl mpi_smc.pl PPL_BINARY HAS_MPI EXACT_DIR
#
# Skipped (one TAP skip line) when the build has no MPI or mpirun is missing.
# For the Kalman filter and the HMM of the exact problems, a
# stochastic-volatility model and a model whose particles are killed by
# runtime errors, with R = 1, 2 and 4 ranks: the engine line says the
# particles are split, and the CSV rows and the log evidence (the CSV's
# comment, every digit) are the single-process run's (and for two chains of
# two runs each over 3 ranks with 2 threads each); a run in which every
# particle dies fails with the single-process run's message.  A program the
# particles cannot run compiled falls back to every rank running the whole
# population, says so and why, and still writes the single-process draws.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin . '/..', $FindBin::Bin;
use TapCli;
use MpiCli;
use Cwd qw(abs_path);

my $exact = abs_path($ARGV[2] // "$FindBin::Bin/../exact");
my ($dir, $ppl) = tapcli_setup(shift @ARGV);
my $has_mpi = shift @ARGV // 0;
mpi_setup($ppl, $has_mpi);
sub evidence { my ($t) = slurp(shift) =~ /^# log_evidence = (\S+)$/m; return $t // 'none'; }

spit('sv.ppl', <<'PPL');
data { int T; real y[T]; real mu; real phi; real<lower=0> s; }
model {
  real h_prev = mu;
  for (t in 1:T) {
    real h ~ normal(t == 1 ? mu : mu + phi * (h_prev - mu), t == 1 ? s / sqrt(1 - phi * phi) : s);
    y[t] ~ normal(0, exp(h / 2));
    h_prev = h;
  }
  real h_last = h_prev;
}
PPL
spit('sv.json', '{"T": 12, "y": [0.3, -1.2, 0.4, 0.8, -1.9, 0.1, 2.7, -1.1, 0.05, 0.6, -0.3, 1.4],'
              . ' "mu": -0.5, "phi": 0.9, "s": 0.4}');
# a scale that goes negative in some particles kills them
spit('kill.ppl', <<'PPL');
data { int T; real y[T]; }
model {
  real s = 1;
  for (t in 1:T) {
    real x ~ normal(0, 1);
    s = s + x / 4;
    y[t] ~ normal(x, s);
  }
}
PPL
spit('kill.json', '{"T": 10, "y": [0.1, 0.5, -0.2, 1.0, 0.3, 0.0, 0.7, -0.5, 1.1, 0.2]}');

my @models = (
  ['kalman', "$exact/kalman.ppl", "$exact/problems/kalman/data.json", 1000],
  ['hmm3', "$exact/hmm3.ppl", "$exact/problems/hmm3/data.json", 1000],
  ['stochastic volatility', 'sv.ppl', 'sv.json', 1001], # ranges not all of one size
  ['killed particles', 'kill.ppl', 'kill.json', 1000],
);
for my $m (@models) {
  my ($name, $model, $data, $n) = @$m;
  my @args = ('run', $model, '--data', $data, '--engine', 'smc', '--seed', '11', '--chains', '1',
              '--particles', $n, '--draws', $n, '--quiet');
  my ($st1) = run_cmd(@args, '--output', 'one.csv');
  ok($st1 == 0 && length(rows('one.csv')) > 1000 && evidence('one.csv') ne 'none', "$name: the single-process run");
  for my $r (1, 2, 4) {
    my ($st, $out, $err) = mpi($r, @args, '--output', "r$r.csv");
    my $how = $r == 1 ? qr/; MPI: 1 rank$/m : qr/; MPI: each chain's $n particles are split over $r ranks in contiguous ranges/;
    ok($st == 0 && $err =~ /^engine: smc — .*$how/m,
       "$name, $r ranks: the engine line says the particles are split") or print map { "# $_\n" } split /\n/, $err;
    ok(rows('one.csv') eq rows("r$r.csv"), "$name, $r ranks: the single-process run's draws, bit for bit");
    ok(evidence('one.csv') eq evidence("r$r.csv"),
       "$name, $r ranks: the single-process log evidence (" . evidence("r$r.csv") . ")");
  }
}

# two chains in step, two runs per chain, multinomial resampling, two
# particle threads per rank, ranges of unequal sizes (3 ranks)
{
  my @args = ('run', "$exact/kalman.ppl", '--data', "$exact/problems/kalman/data.json", '--engine', 'smc',
              '--seed', '9', '--chains', '2', '--particles', '500', '--draws', '1000', '--resample',
              'multinomial', '--quiet');
  run_cmd(@args, '--output', 'm1.csv');
  my ($st, $out, $err) = mpi(3, @args, '--threads', '2', '--output', 'm3.csv');
  ok($st == 0 && $err =~ /MPI: each chain's 500 particles are split over 3 ranks/, "2 chains, 3 ranks: split")
    or print map { "# $_\n" } split /\n/, $err;
  ok(length(rows('m1_1.csv')) > 1000 && rows('m1_1.csv') eq rows('m3_1.csv') && rows('m1_2.csv') eq rows('m3_2.csv') &&
     evidence('m1_1.csv') eq evidence('m3_1.csv') && evidence('m1_2.csv') eq evidence('m3_2.csv'),
     "2 chains of 2 runs, multinomial, 2 threads a rank, 3 ranks: the single-process draws and evidence");
}

# the weights and the ancestors found rank by rank in the normaliser's blocks:
# stratified points, residual (every rank draws every ancestor), more ranks
# than blocks (20 particles are 3 blocks: a rank holds none), 256 blocks
for my $c (['stratified', 1001, 3], ['residual', 777, 2], ['systematic', 20, 4], ['systematic', 5000, 4]) {
  my ($scheme, $n, $r) = @$c;
  my @args = ('run', 'sv.ppl', '--data', 'sv.json', '--engine', 'smc', '--seed', '21', '--chains', '1',
              '--particles', $n, '--draws', $n, '--resample', $scheme, '--quiet');
  run_cmd(@args, '--output', 's1.csv');
  my ($st, $out, $err) = mpi($r, @args, '--output', 'sr.csv');
  ok($st == 0 && length(rows('s1.csv')) > 100 && rows('s1.csv') eq rows('sr.csv') && evidence('s1.csv') eq evidence('sr.csv'),
     "$scheme, $n particles, $r ranks: the single-process draws and evidence (" . evidence('sr.csv') . ")")
    or print map { "# $_\n" } split /\n/, $err;
}

# every particle dies (the scale turns negative for all by the last step):
# the same failure, first error included, on every number of ranks
{
  spit('die.ppl', <<'PPL');
data { int T; real y[T]; }
model {
  for (t in 1:T) {
    real x ~ normal(0, 1);
    y[t] ~ normal(x, x > 2 ? -1.0 : 1.0);
  }
  real z ~ normal(0, 1);
  0.5 ~ normal(z, z - 100);
}
PPL
  spit('die.json', '{"T": 3, "y": [0.1, 0.5, -0.2]}');
  my @args = ('run', 'die.ppl', '--data', 'die.json', '--engine', 'smc', '--seed', '3', '--chains', '1',
              '--particles', '1000', '--draws', '1000', '--quiet', '--output', 'die.csv');
  my ($st1, $out1, $err1) = run_cmd(@args);
  my ($msg1) = $err1 =~ /(every particle has zero weight.*)/;
  ok($st1 != 0 && $msg1 && $msg1 =~ /first error: die\.ppl:5:5: /, "every particle dies: the single-process message")
    or print map { "# $_\n" } split /\n/, $err1;
  for my $r (2, 4) {
    my ($st, $out, $err) = mpi($r, @args);
    my ($msg) = $err =~ /(every particle has zero weight.*)/;
    ok($st == $st1 && defined $msg && $msg1 && $msg eq $msg1, "every particle dies, $r ranks: the same message")
      or print map { "# $_\n" } split /\n/, $err;
  }
}

# the interpreter's particles stay whole on every rank: the engine line says
# why, and the draws are still the single-process run's
{
  spit('branch.ppl', <<'PPL');
data { int T; real y[T]; }
model {
  real x_prev = 0;
  for (t in 1:T) {
    real x ~ normal(x_prev, 1);
    if (x > 0)
      y[t] ~ normal(x, 1);
    else
      y[t] ~ normal(-x, 2);
    x_prev = x;
  }
}
PPL
  spit('branch.json', '{"T": 4, "y": [0.5, 1.5, -1.0, 2.2]}');
  my @args = ('run', 'branch.ppl', '--data', 'branch.json', '--engine', 'smc', '--seed', '4', '--chains', '1',
              '--particles', '300', '--draws', '300', '--quiet');
  run_cmd(@args, '--output', 'b1.csv');
  my ($st, $out, $err) = mpi(2, @args, '--output', 'b2.csv');
  ok($st == 0 && $err =~ /; MPI: each of the 2 ranks runs every chain's whole population in step; rank 0 writes \(particles not split: interpreted: branch\.ppl:6:5: branch on a latent-dependent condition\)$/m,
     "interpreted particles: the engine line says they are not split, and why") or print map { "# $_\n" } split /\n/, $err;
  ok(length(rows('b1.csv')) > 1000 && rows('b1.csv') eq rows('b2.csv') && evidence('b1.csv') eq evidence('b2.csv'),
     "interpreted particles, 2 ranks: the single-process run's draws and evidence");
}
exit tap_done();
