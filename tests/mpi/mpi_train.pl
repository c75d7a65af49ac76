#!/usr/bin/perl
# mpi_train.pl — data-parallel training under `mpirun -n R` (issue 18,
# docs/scaling.md "Training across ranks"); TAP.
#
#   perl mpi_train.pl PPL_BINARY HAS_MPI
#
# svi (`ppl train`, `ppl run --engine svi`) computes each step's gradient in
# fixed blocks (--grad-blocks G of each sample's minibatch, times
# --grad-samples), the ranks share the blocks and every rank adds them in
# block order: the trained params file is the same bytes for 1, 2 and 4
# ranks, and the single process with the same G.  G blocks of a model whose
# latents are all global are one block's estimate up to rounding (the weights N/B and 1/G): the global
# latents come from the sample's stream in every block.  advi splits
# its log density by data rows (ld_shard.h): the same draws for 1, 2 and 4
# ranks.  npe (train --amortize) shares out its simulations and computes
# each step's gradient in --grad-blocks blocks: the same file for 1, 2, 3
# and 4 ranks and the single process with the same blocks.  Skipped (one
# TAP skip line) without MPI or mpirun.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin . '/..', $FindBin::Bin;
use TapCli;
use MpiCli;

my ($dir, $ppl) = tapcli_setup(shift @ARGV);
my $has_mpi = shift @ARGV // 0;
mpi_setup($ppl, $has_mpi);

# a local latent per row in a subsampled plate, and an encoder's params
spit('toy.ppl', <<'PPL');
data { int N; vector[N] x; }
model {
  real mu ~ normal(0, 3);
  plate (i in 1:N, batch = 20) {
    real z ~ normal(mu, 1);
    x[i] ~ normal(z, 0.5);
  }
}
guide {
  param real m;
  param real<lower=0> sm = 1;
  real mu ~ normal(m, sm);
  param real a;
  param real b;
  param real<lower=0> s = 1;
  plate (i in 1:N, batch = 20) {
    real z ~ normal(a * x[i] + b, s);
  }
}
PPL
my @x = map { sprintf '%.4f', 1 + 1.5 * sin(1.7 * $_) } 1 .. 200;
spit('toy.json', '{"N": 200, "x": [' . join(',', @x) . "]}\n");
my @train = ('train', 'toy.ppl', '--data', 'toy.json', '--iter', '60', '--lr', '0.05', '--seed', '11',
             '--no-progress');

my ($st, $out, $err) = run_cmd(@train, '--save', 'plain.params');
my $st1;
ok($st == 0 && length(slurp('plain.params')) > 100, "train without blocks") or print "# $err\n";

# four blocks: the same file for the single process and 1, 2 and 4 ranks,
# and the same final ELBO (its samples shared among the ranks)
my $one;
($st, $one) = run_cmd(@train, '--save', 'g4.params', '--grad-blocks', '4');
my ($elbo1) = $one =~ /^trained: .*?, ELBO (\S+) in /m;
ok($st == 0 && -s 'g4.params', "train --grad-blocks 4 in one process");
ok(slurp('g4.params') ne slurp('plain.params'), "four blocks are other bits than one");
for my $r (1, 2, 4) {
  ($st, $out, $err) = mpi($r, @train, '--save', "r$r.params", '--grad-blocks', '4');
  ok($st == 0 && slurp("r$r.params") eq slurp('g4.params'),
     "train under mpirun -n $r: the single process's params file, byte for byte") or print "# $err\n";
  my @done = $out =~ /^trained: /mg;
  my ($elbo) = $out =~ /^trained: .*?, ELBO (\S+) in /m;
  ok(@done == 1 && defined $elbo1 && defined $elbo && $elbo eq $elbo1,
     "train under mpirun -n $r: rank 0 alone reports, the single process's ELBO ($elbo1)") or print "# $out\n";
}
# the default under MPI is 8 blocks; with 3 Monte Carlo samples, 24 blocks
($st) = run_cmd(@train, '--save', 'g8.params', '--grad-blocks', '8');
($st1, $out, $err) = mpi(2, @train, '--save', 'd2.params');
ok($st == 0 && $st1 == 0 && slurp('d2.params') eq slurp('g8.params'),
   "train under mpirun -n 2 without --grad-blocks: 8 blocks, the single process's file") or print "# $err\n";
($st) = run_cmd(@train, '--save', 's3.params', '--grad-blocks', '4', '--grad-samples', '3');
for my $r (2, 4) {
  ($st1, $out, $err) = mpi($r, @train, '--save', "s3r$r.params", '--grad-blocks', '4', '--grad-samples', '3');
  ok($st == 0 && $st1 == 0 && slurp("s3r$r.params") eq slurp('s3.params'),
     "--grad-samples 3 --grad-blocks 4 under mpirun -n $r: the single process's file") or print "# $err\n";
}

# a discrete latent per row: the score-function estimator (each block's
# share of the baseline) and the relaxation (each block's own noise after
# the plate), the single process's file under 2 ranks
spit('disc.ppl', <<'PPL');
data { int N; vector[N] x; }
model {
  real mu ~ normal(0, 3);
  plate (i in 1:N, batch = 20) {
    int k ~ bernoulli(0.5);
    x[i] ~ normal(k == 1 ? mu : -mu, 1);
  }
}
guide {
  param real m;
  param real<lower=0> sm = 1;
  real mu ~ normal(m, sm);
  param real a;
  param real b;
  plate (i in 1:N, batch = 20) {
    int k ~ bernoulli_logit(a * x[i] + b);
  }
}
PPL
for my $relax ([], ['--relax']) {
  my @d = ('train', 'disc.ppl', '--data', 'toy.json', '--iter', '40', '--seed', '3', '--no-progress',
           '--grad-blocks', '4', @$relax);
  ($st) = run_cmd(@d, '--save', 'd1.params');
  ($st1, $out, $err) = mpi(2, @d, '--save', 'd2.params');
  ok($st == 0 && $st1 == 0 && -s 'd1.params' && slurp('d1.params') eq slurp('d2.params'),
     "a discrete latent per row" . (@$relax ? " (--relax)" : " (score function)") .
     ", 2 ranks: the single process's file") or print "# $err\n";
}

# the weights: with every latent global (the same draw in every block) the
# blocks add up to one block's estimate but for rounding, so 30 steps of
# --grad-blocks 5 end where --grad-blocks 1 does, to 1e-9
spit('glob.ppl', <<'PPL');
data { int N; vector[N] x; }
model {
  real mu ~ normal(0, 3);
  real<lower=0> sigma ~ lognormal(0, 1);
  plate (i in 1:N, batch = 25) { x[i] ~ normal(mu, sigma); }
}
guide {
  param real m;
  param real<lower=0> sm = 0.5;
  param real l;
  param real<lower=0> sl = 0.5;
  real mu ~ normal(m, sm);
  real<lower=0> sigma ~ lognormal(l, sl);
}
PPL
# every float64 of a safetensors file, tensor by tensor in the header's order
sub st_numbers {
  my $t = slurp(shift);
  return () if length($t) < 8;
  my $n = unpack('Q<', substr($t, 0, 8));
  my $head = substr($t, 8, $n);
  my @v;
  while ($head =~ /"dtype"\s*:\s*"F64"[^}]*?"data_offsets"\s*:\s*\[\s*(\d+)\s*,\s*(\d+)\s*\]/g) {
    push @v, unpack('d<*', substr($t, 8 + $n + $1, $2 - $1));
  }
  return @v;
}
{
  my @tr = ('train', 'glob.ppl', '--data', 'toy.json', '--iter', '30', '--lr', '0.05', '--seed', '5',
            '--no-progress');
  run_cmd(@tr, '--save', 'glob1.params', '--grad-blocks', '1');
  ($st, $out, $err) = run_cmd(@tr, '--save', 'glob5.params', '--grad-blocks', '5');
  my @a = st_numbers('glob1.params');
  my @b = st_numbers('glob5.params');
  my $worst = 0;
  for my $k (0 .. $#a) {
    my $d = abs($a[$k] - $b[$k]) / (1e-3 + abs($a[$k]));
    $worst = $d if $d > $worst;
  }
  ok($st == 0 && @a >= 4 && @a == @b && $worst < 1e-9,
     "global latents: 30 steps of 5 blocks end where 1 block does (" . scalar(@a) .
     " numbers, largest relative difference $worst)") or print "# $err\n";
}

# ppl run --engine svi under mpirun: the engine line, and the same draws
{
  my @run = ('run', 'toy.ppl', '--data', 'toy.json', '--engine', 'svi', '--chains', '1', '--draws', '50',
             '--iter', '40', '--seed', '2', '--grad-blocks', '4');
  run_cmd(@run, '--output', 'svi1.csv', '--quiet');
  for my $r (2, 4) {
    ($st, $out, $err) = mpi($r, @run, '--output', "svi$r.csv");
    ok($st == 0 && $err =~ /; MPI: each step's gradient is split over $r ranks in fixed blocks/,
       "svi, $r ranks: the engine line says how the gradient is split") or print "# $err\n";
    ok(length(rows('svi1.csv')) > 100 && rows('svi1.csv') eq rows("svi$r.csv"),
       "svi, $r ranks: the single process's draws, bit for bit");
  }
}

# advi: one chain's log density split by the rows, the same draws for any R
{
  spit_logit();
  my @run = ('run', 'logit.ppl', '--data', 'logit.json', '--engine', 'advi', '--chains', '1',
             '--draws', '100', '--seed', '4');
  ($st, $out, $err) = mpi(1, @run, '--output', 'advi1.csv', '--mpi-split', 'shard');
  ok($st == 0 && $err =~ /^engine: advi — .*; MPI: each chain's log density is split over 1 rank by the rows of N/m,
     "advi, 1 rank: the engine line names the split") or print "# $err\n";
  for my $r (2, 4) {
    ($st, $out, $err) = mpi($r, @run, '--output', "advi$r.csv");
    ok($st == 0 && length(rows('advi1.csv')) > 100 && rows('advi1.csv') eq rows("advi$r.csv"),
       "advi, $r ranks: the draws of 1 rank, bit for bit") or print "# $err\n";
  }
}

# errors: a program error in every block fails every rank with one message,
# the single process's
{
  (my $bad = slurp('toy.ppl')) =~ s/x\[i\] ~ normal\(z, 0\.5\)/x[i] ~ normal(z, -0.5)/;
  spit('bad.ppl', $bad);
  my @b = ('train', 'bad.ppl', '--data', 'toy.json', '--iter', '5', '--save', 'bad.params', '--no-progress');
  my ($s1, $o1, $e1) = run_cmd(@b, '--grad-blocks', '4');
  ($st, $out, $err) = mpi(2, @b, '--grad-blocks', '4');
  my ($m1) = $e1 =~ /^(.*sigma must be positive.*)$/m;
  my @msgs = $err =~ /sigma must be positive/g;
  ok($s1 != 0 && $st == $s1 && @msgs == 1 && defined $m1 && index($err, $m1) >= 0 && !-e 'bad.params',
     "a program error in the blocks: status $st, one message, the single process's, no file")
    or print "# one process: $e1\n# mpirun: $err\n";
}

# npe (train --amortize): the simulations shared among the ranks (each from
# its own stream), each step's gradient in --grad-blocks blocks added in
# order: the params file of 1, 2 and 4 ranks is the single process's with
# the same blocks, byte for byte, and so are the draws run from it
spit('nm.ppl', <<'PPL');
data { int N; vector[N] y; }
model {
  real mu ~ normal(0, 2);
  real<lower=0> s ~ lognormal(0, 0.5);
  plate (i in 1:N) { y[i] ~ normal(mu, s); }
}
PPL
spit('nm_shape.json', qq({"N": 10}\n));
spit('nm_obs.json', qq({"N": 10, "y": [0.3, 1.2, -0.4, 0.8, 1.9, 0.1, 0.7, 1.1, 0.5, -0.2]}\n));
{
  my @tr = ('train', 'nm.ppl', '--data', 'nm_shape.json', '--amortize', '--simulations', '700',
            '--epochs', '6', '--batch', '50', '--seed', '7', '--no-progress');
  my ($s0) = run_cmd(@tr, '--save', 'npe_plain.params');
  ($st) = run_cmd(@tr, '--save', 'npe_g1.params', '--grad-blocks', '1');
  ok($s0 == 0 && $st == 0 && -s 'npe_plain.params' && slurp('npe_g1.params') eq slurp('npe_plain.params'),
     "npe: --grad-blocks 1 is the undivided minibatch, byte for byte");
  my $one;
  ($st, $one) = run_cmd(@tr, '--save', 'npe_g4.params', '--grad-blocks', '4');
  my ($loss1) = $one =~ /^trained: 700 simulations, 6 epochs, held-out loss (\S+) in /m;
  ok($st == 0 && defined $loss1, "npe: --grad-blocks 4 in one process") or print "# $one\n";
  for my $r (1, 2, 4) {
    ($st, $out, $err) = mpi($r, @tr, '--save', "npe_r$r.params", '--grad-blocks', '4');
    ok($st == 0 && -s "npe_r$r.params" && slurp("npe_r$r.params") eq slurp('npe_g4.params'),
       "npe under mpirun -n $r: the single process's params file, byte for byte") or print "# $err\n";
    my @done = $out =~ /^trained: /mg;
    my ($loss) = $out =~ /^trained: 700 simulations, 6 epochs, held-out loss (\S+) in /m;
    ok(@done == 1 && defined $loss1 && defined $loss && $loss eq $loss1,
       "npe under mpirun -n $r: rank 0 alone reports, the single process's held-out loss") or print "# $out\n";
  }
  # under MPI without --grad-blocks: 8 blocks (3 ranks: uneven shares)
  run_cmd(@tr, '--save', 'npe_g8.params', '--grad-blocks', '8');
  for my $r (2, 3) {
    ($st, $out, $err) = mpi($r, @tr, '--save', "npe_d$r.params");
    ok($st == 0 && -s 'npe_g8.params' && slurp("npe_d$r.params") eq slurp('npe_g8.params'),
       "npe under mpirun -n $r without --grad-blocks: 8 blocks, the single process's file") or print "# $err\n";
  }
  # the amortized draws: from the file 4 ranks trained, and run under 2 ranks
  my @run = ('run', 'nm.ppl', '--data', 'nm_obs.json', '--chains', '2', '--draws', '300', '--seed', '3');
  run_cmd(@run, '--load', 'npe_g4.params', '--output', 'npe1.csv', '--quiet');
  run_cmd(@run, '--load', 'npe_r4.params', '--output', 'npe4.csv', '--quiet');
  ($st, $out, $err) = mpi(2, @run, '--load', 'npe_r2.params', '--output', 'npe2.csv');
  my $draws = rows('npe1_1.csv') . rows('npe1_2.csv');
  ok(length($draws) > 1000 && $draws eq rows('npe4_1.csv') . rows('npe4_2.csv'),
     "npe: the draws from the file 4 ranks trained are the single process's");
  ok($st == 0 && $draws eq rows('npe2_1.csv') . rows('npe2_2.csv'),
     "npe: mpirun -n 2 ppl run --load draws the single process's draws") or print "# $err\n";
}
# simulations that fail (a negative sd from the prior) are dropped wherever
# they are made: the same kept set and file for 3 ranks; a set in which too
# few are kept fails every rank with the single process's message
{
  spit('half.ppl', <<'PPL');
data { int N; vector[N] y; }
model {
  real mu ~ normal(0, 2);
  real s ~ normal(1, 1);
  plate (i in 1:N) { y[i] ~ normal(mu, s); }
}
PPL
  my @tr = ('train', 'half.ppl', '--data', 'nm_shape.json', '--amortize', '--simulations', '400',
            '--epochs', '3', '--seed', '7', '--no-progress', '--grad-blocks', '3');
  my ($s1, $o1) = run_cmd(@tr, '--save', 'half1.params');
  my ($kept) = $o1 =~ /^trained: (\d+) simulations/m;
  ($st, $out, $err) = mpi(3, @tr, '--save', 'half3.params');
  ok($s1 == 0 && $st == 0 && defined $kept && $kept > 200 && $kept < 400 &&
     $out =~ /^trained: $kept simulations/m && slurp('half1.params') eq slurp('half3.params'),
     "npe: dropped simulations ($kept of 400 kept), 3 ranks: the same kept set and file") or print "# $o1$out$err\n";
  (my $few = slurp('half.ppl')) =~ s/normal\(1, 1\)/normal(-2, 1)/;
  spit('few.ppl', $few);
  my @f = ('train', 'few.ppl', '--data', 'nm_shape.json', '--amortize', '--simulations', '10',
           '--seed', '7', '--no-progress', '--save', 'few.params');
  my ($e1);
  ($s1, undef, $e1) = run_cmd(@f);
  ($st, $out, $err) = mpi(3, @f);
  my ($m1) = $e1 =~ /^(npe: only \d+ of 10 simulations .*first failure: .*)$/m;
  my @msgs = $err =~ /npe: only/g;
  ok($s1 != 0 && $st == $s1 && defined $m1 && @msgs == 1 && index($err, $m1) >= 0 && !-e 'few.params',
     "npe: too few kept, 3 ranks: status $st, one message, the single process's, no file")
    or print "# one process: $e1\n# mpirun: $err\n";
}
exit tap_done();
