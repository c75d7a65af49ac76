#!/usr/bin/perl
# vae_bench.pl PPL [STEPS] — VAE training throughput (examples/s) of ppl
# beside PyTorch on the same architecture, data, batch and optimiser, one
# thread each: examples/vae/vae.ppl under `ppl run --engine svi` and
# bench/vae/torch_vae.py in float64 (as ppl computes) and float32.  Rates by
# CPU time, so that other work on a shared machine slows both alike: ppl's is
# the CPU time of a run of STEPS steps less that of a run of 1 step (the same
# start-up, draws and output), PyTorch's the process time of its steps; the
# wall-clock rates are printed too (ppl's from fit_seconds in its CSV).  ppl
# runs twice a round: as it trains by default (the plates' bodies once over
# the minibatch, ir/plate_vec.h) and row by row (--plate-rows).  Three
# interleaved rounds, the best of each counts.  PyTorch is skipped with a
# message where Debian's python3-torch is not installed.  Not a test.
#
#   nice perl bench/vae/vae_bench.pl build/ppl 2000
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use Cwd qw(abs_path);

my $ppl = abs_path(shift @ARGV // '') or die "usage: vae_bench.pl PPL [STEPS]\n";
my $steps = shift @ARGV // 2000;
my $here = abs_path(dirname(__FILE__));
my $ex = "$here/../../examples/vae";
my $tmp = tempdir(CLEANUP => 1);
system('perl', "$ex/data/split.pl", $tmp) == 0 or die "split.pl failed\n";
my $py = '/usr/bin/python3';
my $torch = system("$py -c 'import torch' 2>/dev/null") == 0;
print "PyTorch: not installed (apt-get install python3-torch); ppl only\n" unless $torch;
$ENV{OMP_NUM_THREADS} = 1;
$ENV{OPENBLAS_NUM_THREADS} = 1;

# CPU seconds (user + sys) of a ppl run of n steps, and its fit_seconds
sub ppl_run {
  my ($n, @more) = @_;
  my @t0 = times;
  system($ppl, 'run', "$ex/vae.ppl", '--data', "$tmp/train.json", '--engine', 'svi', '--chains', 1,
         '--threads', 1, '--iter', $n, '--lr', 0.01, '--draws', 1, '--elbo-samples', 1,
         '--include', 'z', '--quiet', '--no-progress', '--output', "$tmp/ppl.csv", @more) == 0
    or die "ppl failed\n";
  my @t1 = times;
  open(my $f, '<', "$tmp/ppl.csv") or die;
  my ($fit) = map { /^# fit_seconds = (\S+)/ ? $1 : () } <$f>;
  return ($t1[2] + $t1[3] - $t0[2] - $t0[3], $fit);
}

my %best;
sub best { my ($k, $v) = @_; $best{$k} = $v if !defined $best{$k} || $v > $best{$k} }
for my $round (1 .. 3) {
  for my $rows (0, 1) {
    my @more = $rows ? ('--plate-rows') : ();
    my ($c1) = ppl_run(1, @more);
    my ($cn, $fit) = ppl_run($steps, @more);
    my ($cpu, $wall) = (100 * ($steps - 1) / ($cn - $c1), 100 * $steps / $fit);
    printf "ppl float64%s: %d steps of 100: %.0f examples/s (wall), %.0f examples/s (CPU)\n",
      $rows ? ' (row by row)' : '', $steps, $wall, $cpu;
    best($rows ? 'rows' : 'ppl', $cpu);
  }
  next unless $torch;
  for my $dt ('float64', 'float32') {
    my $line = `$py '$here/torch_vae.py' '$tmp/train.json' $steps 100 0.01 $dt`;
    print $line;
    best($dt, $1) if $line =~ /([0-9.]+) examples\/s \(CPU\)/;
  }
}
printf "best (CPU): ppl %.0f examples/s (row by row %.0f: %.2fx)", $best{ppl}, $best{rows},
  $best{ppl} / $best{rows};
printf "; torch float64 %.0f (ppl/torch %.2f), float32 %.0f (ppl/torch %.2f)", $best{float64},
  $best{ppl} / $best{float64}, $best{float32}, $best{ppl} / $best{float32} if $torch;
print "\n";
