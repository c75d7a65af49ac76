#!/usr/bin/perl
# mpi_cli.pl — `ppl run` under `mpirun -n R` (issue 18, docs/scaling.md); TAP.
#
#   perl mpi_cli.pl PPL_BINARY HAS_MPI TEST_LD_SHARD
#
# Skipped (one TAP skip line) when the build has no MPI or mpirun is missing.
# For nuts, mh and smc, with R = 1, 2 and 4 ranks on this machine
# (--oversubscribe), the draws of every chain's CSV (its rows, comments
# aside: they hold the timings and the engine line) are the single-process
# run's for the same seed, byte for byte; the engine line says how the run
# is split; rank 0 alone prints the summary and the messages; a run that
# cannot start on one rank stops every rank with one message.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin . '/..', $FindBin::Bin;
use TapCli;
use MpiCli;

use Cwd qw(abs_path);
my $ld_test = $ARGV[2] ? abs_path($ARGV[2]) : undef; # before the chdir
my ($dir, $ppl) = tapcli_setup(shift @ARGV);
my $has_mpi = shift @ARGV // 0;
mpi_setup($ppl, $has_mpi);

spit('normal.ppl', <<'PPL');
data { int N; vector[N] y; }
model {
  real mu ~ normal(0, 10);
  real<lower=0> sigma ~ exponential(1);
  for (n in 1:N) y[n] ~ normal(mu, sigma);
}
PPL
spit('normal.json', '{"N": 8, "y": [1.2, 0.3, 2.2, 1.9, 0.7, 1.4, 2.8, 1.1]}');

my @runs = (
  ['nuts', '--chains', '4', '--draws', '150', '--warmup', '150'],
  ['mh', '--chains', '4', '--draws', '300', '--warmup', '100'],
  ['smc', '--chains', '4', '--draws', '100', '--particles', '100'],
);
for my $run (@runs) {
  my ($eng, @opts) = @$run;
  my @args = ('run', 'normal.ppl', '--data', 'normal.json', '--engine', $eng, '--seed', '7', @opts);
  my ($st1) = run_cmd(@args, '--output', "one_$eng.csv", '--quiet');
  ok($st1 == 0, "$eng: the single-process run");
  for my $r (1, 2, 4) {
    my ($st, $out, $err) = mpi($r, @args, '--output', "r${r}_$eng.csv");
    ok($st == 0, "$eng: mpirun -n $r runs") or print "# $err\n";
    my $same = 1;
    for my $c (1 .. 4) {
      my ($a, $b) = (rows("one_${eng}_$c.csv"), rows("r${r}_${eng}_$c.csv"));
      $same &&= length($a) > 100 && $a eq $b;
    }
    ok($same, "$eng: mpirun -n $r writes the single-process run's draws, chain by chain");
    my $split = $r == 1 ? qr/; MPI: 1 rank/ : qr/; MPI: 4 chains over $r ranks \(chain c on rank c mod $r\)/;
    ok($err =~ /^engine: $eng — .*$split$/m, "$eng, $r ranks: the engine line says how the run is split")
      or print "# $err\n";
    my @tables = $out =~ /^Inference for ppl model/mg;
    my @lines = $err =~ /^engine:/mg;
    ok(@tables == 1 && @lines == 1, "$eng, $r ranks: rank 0 alone prints the summary and the engine line");
    ok($out =~ /\n\s*mu\s/ && $out =~ /4 chains, /, "$eng, $r ranks: the summary covers every chain");
  }
}

# --mpi-split shard on a program whose rows cannot be split: every rank runs
# every chain in step, unsplit, and the draws are the single-process run's
{
  spit('carry.ppl', <<'PPL');
data { int N; vector[N] y; }
model {
  real mu ~ normal(0, 10);
  real<lower=0> sigma ~ exponential(1);
  real s = 0;
  for (n in 1:N) { y[n] ~ normal(mu, sigma); s += y[n]; }
  target += 0.01 * s;
}
PPL
  my @args = ('run', 'carry.ppl', '--data', 'normal.json', '--engine', 'nuts', '--seed', '7',
              '--chains', '2', '--draws', '100', '--warmup', '100');
  run_cmd(@args, '--output', 'carry1.csv');
  my ($st, $out, $err) = mpi(2, @args, '--output', 'carry2.csv', '--mpi-split', 'shard');
  ok($st == 0 && $err =~ /; MPI: each of the 2 ranks runs every chain in step; rank 0 writes \(no rows split: carry.ppl:6:3: the loop over the rows carries 's' from row to row\)$/m,
     "--mpi-split shard, rows not independent: the engine line says why they are not split") or print "# $err\n";
  ok(length(rows('carry1_1.csv')) > 100 && rows('carry1_1.csv') eq rows('carry2_1.csv') &&
     rows('carry1_2.csv') eq rows('carry2_2.csv'), "--mpi-split shard, rows not split: the single-process run's draws");
}

# one chain's log density split by rows (--mpi-split shard, or fewer chains
# than ranks): the same draws for 1, 2 and 4 ranks
{
  spit_logit();
  my @args = ('run', 'logit.ppl', '--data', 'logit.json', '--engine', 'nuts', '--seed', '3',
              '--chains', '1', '--draws', '100', '--warmup', '100');
  my ($st, $out, $err) = mpi(1, @args, '--output', 'sh1.csv', '--mpi-split', 'shard');
  ok($st == 0 && $err =~ /; MPI: each chain's log density is split over 1 rank by the rows of N \(5:3 for \(n in 1:N\);/,
     "shard, 1 rank: the engine line names the split loop") or print "# $err\n";
  for my $r (2, 4) {
    ($st, $out, $err) = mpi($r, @args, '--output', "sh$r.csv");
    ok($st == 0 && $err =~ /split over $r ranks by the rows of N/, "1 chain, $r ranks: the rows are split (auto)")
      or print "# $err\n";
    ok(length(rows('sh1.csv')) > 100 && rows('sh1.csv') eq rows("sh$r.csv"),
       "1 chain, $r ranks: the draws of 1 rank, bit for bit");
  }
}

# the sharded density itself over 2 and 4 ranks (test_ld_shard under mpirun)
if (my $t = $ld_test) {
  for my $r (2, 4) {
    my ($st, $tap, $err) = mpi_exec($r, $t);
    my @oks = $tap =~ /^ok /mg;
    ok($st == 0 && @oks == 12 && $tap !~ /^not ok/m,
       "test_ld_shard under mpirun -n $r: the density over $r ranks is the one-rank density bit for bit")
      or print map { "# $_\n" } split /\n/, $tap . $err;
  }
}

# a run that cannot start stops every rank, with one message
{
  my ($st, $out, $err) = mpi(2, 'run', 'normal.ppl', '--data', 'missing.json');
  ok($st != 0 && $st != 124, "a missing data file: every rank stops (status $st)");
  my @msgs = $err =~ /missing\.json/g;
  ok(@msgs == 1, "a missing data file: one message, from rank 0") or print "# $err\n";
}
# --choices: the choices files are not sent between ranks, so every rank
# runs every chain and rank 0 writes the single-process run's files
{
  my @args = ('run', 'normal.ppl', '--data', 'normal.json', '--engine', 'mh', '--seed', '5',
              '--chains', '2', '--draws', '60', '--choices', '--quiet');
  run_cmd(@args, '--output', 'ch1.csv');
  my ($st, $out, $err) = mpi(2, @args, '--output', 'ch2.csv');
  ok($st == 0 && $err =~ /; MPI: each of the 2 ranks runs every chain in step; rank 0 writes$/m,
     "--choices under mpirun: every rank runs every chain, and the engine line says so") or print "# $err\n";
  ok(length(slurp('ch1_2_choices.jsonl')) > 100 && slurp('ch1_2_choices.jsonl') eq slurp('ch2_2_choices.jsonl') &&
     rows('ch1_1.csv') eq rows('ch2_1.csv') && rows('ch1_2.csv') eq rows('ch2_2.csv'),
     "--choices under mpirun: the single-process run's CSV and choices files");
}

# learning proposals runs in one process (train is split: mpi_train.pl)
{
  my ($st, $out, $err) = mpi(2, 'learn-proposals', 'normal.ppl', '--data', 'normal.json', '--out', 'props');
  ok($st == 64 && $err =~ /ppl: learn-proposals trains in one process: run it without mpirun/ && !-e 'props',
     "ppl learn-proposals under mpirun -n 2: a usage error, nothing written");
}
# outside mpirun the option is refused
{
  my ($st, $out, $err) = run_cmd('run', 'normal.ppl', '--data', 'normal.json', '--mpi-split', 'chains');
  ok($st == 64 && $err =~ /--mpi-split applies under mpirun only/, "--mpi-split outside mpirun: a usage error");
}
exit tap_done();
