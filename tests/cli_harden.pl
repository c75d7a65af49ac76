#!/usr/bin/perl
# cli_harden.pl — the `ppl` command under signals, memory limits and outputs
# that are not regular files (issue 10); TAP.
#
#   perl cli_harden.pl PPL_BINARY
#
#  - Ctrl-C (SIGINT) during a run (and during advi's fit, before any draw): exit 130, every CSV row complete, the
#    summary text and JSON say interrupted; a second SIGINT exits at once;
#  - --draws 100000000 on a model with many outputs is refused fast (exit 64,
#    no signal) saying how much memory it needs; an allocation that fails
#    under `ulimit -v` is exit 70 "out of memory (allocating N bytes)";
#  - --output /dev/null --chains 2 writes /dev/null and creates no
#    /dev/null_1; a FIFO takes one chain; --output - writes the CSV to stdout
#    and the summary to stderr.
use strict;
use warnings;
use POSIX qw(mkfifo);
use Time::HiRes qw(sleep time);
use FindBin;
use lib $FindBin::Bin;
use TapCli;

my ($dir, $ppl) = tapcli_setup(shift @ARGV);

spit("$dir/long.ppl", "model { real mu ~ normal(0, 1); }\ngenerated { real z = normal_rng(mu, 1); }\n");
spit("$dir/many.ppl", "model { real mu ~ normal(0, 1); }\ngenerated { vector[50] z = rep_vector(mu, 50); }\n");
spit("$dir/slow.ppl", "model { real mu ~ normal(0, 1); }\n" .
     "generated { real s = 0; for (i in 1:300000000) { s = s + 1; } }\n");
spit("$dir/smcoom.ppl", "model { real mu ~ normal(0, 1); 1.0 ~ normal(mu, 1);\n" .
     "  vector[100000000] big = rep_vector(mu, 100000000); 1.0 ~ normal(big[1], 1); }\n");
spit("$dir/huge.ppl", "model { real mu ~ normal(0, 1); }\n" .
     "generated { vector[100000000] z = rep_vector(mu, 100000000); real s = sum(z); }\n");

# ---- Ctrl-C ---------------------------------------------------------------
# mh without warmup, 1e7 iterations a chain (thin 500): seconds, not minutes
my @long = ('run', 'long.ppl', '--engine', 'mh', '--chains', '2', '--threads', '2', '--draws', '20000',
            '--thin', '500', '--output', 'int.csv', '--summary', 'int.json');
my $pid = start("$dir/sum.txt", "$dir/err.txt", @long);
my $rows = 0;
for (1 .. 200) { # until chain 1 has written some rows
  $rows = () = slurp("$dir/int_1.csv") =~ /^-?\d.*\n/mg;
  last if $rows >= 3;
  sleep 0.05;
}
kill 'INT', $pid;
my $st = wait_for($pid, 30);
ok(defined $st && ($st & 127) == 0 && ($st >> 8) == 130, "SIGINT: exit 130 (status " . ($st // 'none') . ")");
my $sum = slurp("$dir/sum.txt");
my ($kept) = $sum =~ /interrupted after (\d+) of 20000 draws/;
ok(defined $kept && $kept > 0, "the summary says interrupted after N of 20000 draws" . (defined $kept ? " (N = $kept)" : ''));
ok($sum =~ /^mu\s+-?\d/m, "the summary has the table of the draws so far");
my $json = slurp("$dir/int.json");
my $nk = $kept // -1;
ok($json =~ /"interrupted": true/ && $json =~ /"draws": $nk\b/, "the JSON summary says interrupted with N draws");
for my $c (1, 2) {
  my $csv = slurp("$dir/int_$c.csv");
  my @lines = grep { !/^#/ && !/^lp__/ } split /\n/, $csv;
  my $bad = grep { scalar(split /,/, $_, -1) != 4 || !/^[-0-9.e+]+(,[-0-9.e+]+){3}$/ } @lines;
  ok(@lines >= ($kept // 1) && !$bad && $csv =~ /\n\z/,
     "chain $c: " . scalar(@lines) . " complete CSV rows, at least N, ending in a newline");
}
ok(slurp("$dir/err.txt") =~ /interrupted: stopping after the current iteration/, "stderr says it is stopping");

# advi's fit runs in the engine's init, before any draw: SIGINT stops the fit
# itself (EngineOpts.interrupt), not only the draws after it
$pid = start("$dir/sum.txt", "$dir/err.txt", 'run', 'long.ppl', '--engine', 'advi', '--iter',
             '100000000', '--tol-rel-obj', '1e-14', '--chains', '2', '--output', 'advi_int.csv');
sleep 1;
kill 'INT', $pid;
$st = wait_for($pid, 5);
ok(defined $st && ($st >> 8) == 130, "SIGINT during an advi fit of 1e8 iterations: exit 130 within 5 s");
ok(slurp("$dir/sum.txt") . slurp("$dir/err.txt") =~ /interrupted before any draw/,
   "advi interrupted in its fit: says no draw was kept");
if (!defined $st) { kill 'KILL', $pid; waitpid($pid, 0); }

# a second SIGINT ends the process at once, while the first waits for a draw
# that takes seconds (a long loop in the generated block)
$pid = start("$dir/sum.txt", "$dir/err.txt", 'run', 'slow.ppl', '--engine', 'prior', '--draws', '1',
             '--chains', '1');
sleep 0.5;
kill 'INT', $pid;
$st = wait_for($pid, 0.5);
ok(!defined $st, "one SIGINT during a long draw: still finishing the draw");
kill 'INT', $pid;
$st = wait_for($pid, 1);
ok(defined $st && ($st >> 8) == 130, "a second SIGINT: exit 130 at once");
if (!defined $st) { kill 'KILL', $pid; waitpid($pid, 0); }

# ---- memory -------------------------------------------------------------
my $t0 = time;
my ($s, $out, $err) = run_cmd('run', 'many.ppl', '--engine', 'prior', '--draws', '100000000', '--quiet');
ok($s == 64, "--draws 100000000, 52 columns: exit 64, no signal (status $s)");
ok($err =~ /ppl: the run would keep 172\.8 GB of draws \(4 chains x 100000000 draws x 52 columns x 8 bytes.*physical memory: thin the draws/,
   "it says how much it needs and what to do");
ok(time - $t0 < 20, sprintf("and fails fast (%.1f s)", time - $t0));

($s, $out, $err) = run_cmd('run', 'long.ppl', '--engine', 'prior', '--draws', '100000000', '--chains', '64');
ok($s == 64 && $err =~ /^ppl: the run would keep .* at least 3 columns/, "64 chains: refused before the run, before the engine line");

{ # under sh, for ulimit
  my $p = fork();
  if (!$p) {
    chdir $dir;
    open STDOUT, '>', "$dir/out.txt"; open STDERR, '>', "$dir/err.txt";
    exec '/bin/sh', '-c', "ulimit -v 700000; exec '$ppl' run huge.ppl --engine prior --draws 2 --chains 2 --quiet";
    exit 127;
  }
  $s = wait_for($p, 60) // -1;
  $err = slurp("$dir/err.txt");
}
ok(($s & 127) == 0 && ($s >> 8) == 70, "an 800 MB vector under ulimit -v 700000: exit 70, no abort (status $s)");
ok($err =~ /^out of memory \(allocating 800000000 bytes\)$/m, "out of memory (allocating 800000000 bytes)");

# smc's particle threads: a failed allocation in a pool thread reaches the
# chain (before, the pool thread had no guard and the process aborted)
my $pool_ok = 0;
for my $try (1 .. 3) {
  my $p = fork();
  if (!$p) {
    chdir $dir;
    open STDOUT, '>', "$dir/out.txt"; open STDERR, '>', "$dir/err.txt";
    exec '/bin/sh', '-c', "ulimit -v 1200000; exec '$ppl' run smcoom.ppl --engine smc --chains 1 --threads 4 --particles 400 --draws 2 --quiet";
    exit 127;
  }
  $s = wait_for($p, 60) // -1;
  $pool_ok++ if ($s & 127) == 0 && ($s >> 8) == 70 && slurp("$dir/err.txt") =~ /^out of memory \(allocating 800000000 bytes\)$/m;
}
ok($pool_ok == 3, "smc with 4 particle threads out of memory: exit 70 with the message, 3 times of 3 ($pool_ok)");

# ---- outputs that are not regular files -----------------------------------
my $had = -e '/dev/null_1';
($s, $out, $err) = run_cmd('run', 'long.ppl', '--engine', 'prior', '--draws', '5', '--chains', '2', '--output', '/dev/null', '--quiet');
ok($s == 0 && -c '/dev/null' && ($had || !-e '/dev/null_1'), "--output /dev/null --chains 2: exit 0, no /dev/null_1");

mkfifo("$dir/fifo", 0600) or die "mkfifo: $!";
my $reader = fork();
if (!$reader) { open my $f, '<', "$dir/fifo"; open my $o, '>', "$dir/fromfifo.csv"; print $o $_ while <$f>; exit 0; }
($s, $out, $err) = run_cmd('run', 'long.ppl', '--engine', 'prior', '--draws', '5', '--chains', '1', '--output', 'fifo', '--quiet');
waitpid($reader, 0);
my @rows = grep { /^-?\d/ } split /\n/, slurp("$dir/fromfifo.csv");
ok($s == 0 && @rows == 5 && !-e "$dir/fifo_1", "a FIFO, one chain: 5 rows through it");
($s, $out, $err) = run_cmd('run', 'long.ppl', '--engine', 'prior', '--draws', '5', '--chains', '2', '--output', 'fifo');
ok($s == 64 && $err =~ /^ppl: output 'fifo' is a FIFO, which takes the draws of one chain; the run has 2 chains/,
   "a FIFO, two chains: exit 64 with a message");

($s, $out, $err) = run_cmd('run', 'long.ppl', '--engine', 'prior', '--draws', '7', '--chains', '1', '--output', '-');
@rows = grep { /^-?\d/ } split /\n/, $out;
ok($s == 0 && $out =~ /^lp__,mu,z$/m && @rows == 7 && $out !~ /Inference for/, "--output -: the CSV (7 rows) on stdout, no table there");
ok($err =~ /Inference for ppl model: long/ && !-e "$dir/-", "the summary table on stderr, no file named '-'");

exit tap_done();
