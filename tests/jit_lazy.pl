#!/usr/bin/perl
# jit_lazy.pl — libLLVM is loaded only when something is compiled (issue 17,
# part 2): the JIT's LLVM half is the module libppl_jit.so (ir/jit_module.h),
# dlopened on the first compile; TAP.
#
#   perl jit_lazy.pl PPL_BINARY
#
# The dynamic linker's own record (LD_DEBUG=files names every object it
# loads, at start-up or by dlopen) shows which runs load it:
#  - `ppl check`, `ppl ir` (without --llvm), `ppl run --no-jit` and an
#    amortized run (`run --load` of a trained guide) load neither the module
#    nor libLLVM;
#  - `ppl run` (compiled) and `ppl ir --llvm` load both (so the check above
#    can fail);
#  - a module that is missing, not a shared object, or not ppl's (no entry
#    table) makes the run interpret, the reason on the backend: line, and
#    the draws are those of --no-jit, bit for bit.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use TapCli;

my ($dir, $ppl) = tapcli_setup(shift @ARGV);

spit("$dir/m.ppl", <<'EOF');
data { int N; vector[N] y; }
model {
  real mu ~ normal(0, 10);
  real<lower=0> sigma ~ exponential(1);
  y ~ normal(mu, sigma);
}
EOF
spit("$dir/m.json", qq({"N": 5, "y": [1.2, 0.4, -0.3, 2.1, 0.9]}\n));

# (status, stdout, stderr without the linker's lines, the linker's lines)
sub traced {
  local $ENV{LD_DEBUG} = 'files';
  my ($s, $out, $err) = run_cmd(@_);
  my @ld = grep { /^\s*\d+:/ } split /\n/, $err;
  my $rest = join "\n", grep { !/^\s*\d+:/ } split /\n/, $err;
  return ($s, $out, $rest, join("\n", @ld));
}
sub loads { my ($ld, $what) = @_; return $ld =~ /file=\S*\Q$what\E/; }

my @run = ('run', 'm.ppl', '--data', 'm.json', '--seed', '3', '--chains', '1', '--warmup', '100',
           '--draws', '100', '--no-progress');

# ---- runs that compile nothing ---------------------------------------------
for my $c (['check', 'm.ppl', '--data', 'm.json'], ['ir', 'm.ppl'],
           [@run, '--no-jit', '--output', 'interp.csv']) {
  my ($s, $out, $err, $ld) = traced(@$c);
  ok($s == 0 && $ld =~ /file=\S*libppl/, "ppl @$c[0..1] ... runs (status $s) under LD_DEBUG");
  ok(!loads($ld, 'libLLVM') && !loads($ld, 'libppl_jit'),
     "ppl @$c: neither libLLVM nor the JIT module is loaded");
}

# an amortized run: a guide trained for a few steps, drawn with --load
spit("$dir/toy.ppl", <<'EOF');
data { int N; vector[N] x; }
model {
  plate (i in 1:N) {
    real z ~ normal(0, 1);
    x[i] ~ normal(z, 0.5);
  }
}
guide {
  param real a;
  param real b;
  param real<lower=0> s = 1;
  plate (i in 1:N) {
    real z ~ normal(a * x[i] + b, s);
  }
}
EOF
spit("$dir/toy.json", qq({"N": 4, "x": [0.5, -1.0, 1.5, 0.2]}\n));
my ($s, $out, $err) = run_cmd('train', 'toy.ppl', '--data', 'toy.json', '--save', 'toy.params',
                              '--iter', '20', '--quiet', '--no-progress');
ok($s == 0, "ppl train (20 steps) for the amortized run (status $s)");
my $ld;
($s, $out, $err, $ld) = traced('run', 'toy.ppl', '--data', 'toy.json', '--load', 'toy.params',
                               '--draws', '50', '--seed', '1', '--no-progress');
ok($s == 0 && $out =~ /amortized/, "run --load: the engine amortized (status $s)");
ok(!loads($ld, 'libLLVM') && !loads($ld, 'libppl_jit'),
   "the amortized run loads neither libLLVM nor the JIT module");

# a run too short to repay compiling (200 iterations of a 2-latent model)
# is interpreted unless --jit asks: nothing loaded, the reason on the line
($s, $out, $err, $ld) = traced(@run, '--output', 'short.csv');
ok($s == 0 && $out =~ /^backend: interpreter \(about 1600 gradients expected: too few to repay compiling; --jit compiles\)$/m,
   "ppl run, a short run: interpreted, the reason given (status $s)") or print "# $out\n";
ok(!loads($ld, 'libLLVM') && !loads($ld, 'libppl_jit'),
   "... neither libLLVM nor the JIT module is loaded");
ok(rows('short.csv') eq rows('interp.csv'), "... and its draws are --no-jit's, bit for bit");
($s, $out, $err) = run_cmd(@run, '--warmup', '20000', '--draws', '20000', '--output', 'long.csv');
ok($s == 0 && $out =~ /^backend: LLVM JIT: log density and gradient compiled/m,
   "a long run (40,000 iterations) compiles with the full pipeline (status $s)") or print "# $out\n";

# ---- runs that compile: the module and libLLVM are loaded --------------------
($s, $out, $err, $ld) = traced(@run, '--jit', '--output', 'jit.csv');
ok($s == 0 && $out =~ /^backend: LLVM JIT, quick \(a short run: the fast pipeline\): log density and gradient compiled/m,
   "ppl run --jit: compiled, the quick way (status $s)");
ok(loads($ld, 'libppl_jit.so') && loads($ld, 'libLLVM'), "ppl run: the module and libLLVM are loaded");
# the draw function is compiled only when the kept draws repay it: 100 are
# interpreted (the reason on the line), 20,000 compiled
ok($out =~ /; draws interpreted \(about 100 draws: too few to repay compiling the draw function\)$/m,
   "ppl run --jit, 100 draws: the draws interpreted, the reason given") or print "# $out\n";
($s, $out, $err) = run_cmd(@run, '--jit', '--draws', '20000', '--output', 'jitlong.csv');
ok($s == 0 && $out =~ /the draw function \(generated quantities\) in \d+ ms$/m,
   "ppl run --jit, 20,000 draws: the draw function compiled (status $s)") or print "# $out\n";
($s, $out, $err, $ld) = traced('ir', '--llvm', 'm.ppl', '--data', 'm.json');
ok($s == 0 && $out =~ /define .*\@ppl_ld/ && loads($ld, 'libLLVM'),
   "ppl ir --llvm: the optimised IR, libLLVM loaded (status $s)");

# ---- a module that cannot serve: interpreted, with the reason ---------------
(my $lib = $ppl) =~ s{[^/]+$}{libppl.so};
spit("$dir/garbage.so", "not a shared object\n");
for my $case (["$dir/none/libppl_jit.so", qr/\Q$dir\E\/none\/libppl_jit\.so \(PPL_JIT_MODULE\) does not exist/],
              ["$dir/garbage.so", qr/garbage\.so: (invalid ELF header|file too short)/],
              [$lib, qr/\Q$lib\E is not of this build of ppl \(no ppl_jit_module\)/]) {
  my ($path, $why) = @$case;
  local $ENV{PPL_JIT_MODULE} = $path;
  ($s, $out, $err) = run_cmd(@run, '--jit', '--output', 'fallback.csv');
  ok($s == 0 && $out =~ /^backend: interpreter \(not compiled: cannot load the JIT module: .*$why/m,
     "PPL_JIT_MODULE=$path: interpreted, the reason given (status $s)")
    or print "# $out\n";
  ok(rows('fallback.csv') eq rows('interp.csv') && rows('interp.csv') ne '',
     "... and its draws are --no-jit's, bit for bit");
}

exit tap_done();
