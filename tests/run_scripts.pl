#!/usr/bin/perl
# run_scripts.pl — runs .ppl test scripts whose expectations sit next to the
# code (as in Wren's test suite) and reports TAP.
#
#   perl run_scripts.pl PPL_BINARY DIR_OR_FILE...
#
# Directives, one per comment line, anywhere in the script:
#   // expect: TEXT               the next line printed to stdout is TEXT
#   // expect error: L:C: MSG     ppl fails; stderr's first line is FILE:L:C: MSG
#                                 (FILE is the script's name); exit status 65
#   // expect stderr: TEXT        stderr's first line is exactly TEXT
#   // exit: N                    expected exit status (default 0, or 65 with errors)
#   // data: FILE.json            pass --data FILE.json (relative to the script)
#   // data-json: {...}           pass this JSON as the data (written to a temp file)
#   // cmd: run|exec|check|ir     the ppl command (default exec; exec runs with
#                                 --quiet, print output only, unless `// values`)
#   // values                     exec prints the run's values after the print output
#   // args: ...                  extra command-line arguments (split on spaces);
#                                 {tmp} stands for a fresh temporary directory
#   // stdout-contains: TEXT      some stdout line contains TEXT (any order)
#   // stderr-contains: TEXT      some stderr line contains TEXT (any order)
# Compile-time warning lines on stderr are skipped by `expect error`, `expect
# stderr` (unless it expects a warning) and the check that exec is silent.
# Scripts run with the script's directory as the working directory.
use strict;
use warnings;
use File::Basename qw(basename dirname);
use File::Temp qw(tempfile tempdir);
use Cwd qw(abs_path);

$| = 1;
my $ppl = abs_path(shift @ARGV) or die "usage: run_scripts.pl PPL DIR...\n";
my @files;
for my $arg (@ARGV) {
  if (-d $arg) { push @files, sort glob("$arg/*.ppl"); }
  else { push @files, $arg; }
}

my $n = 0;
my $failed = 0;

sub run_capture {
  my ($dir, @cmd) = @_;
  my ($ofh, $ofile) = tempfile();
  my ($efh, $efile) = tempfile();
  my $pid = fork();
  if (!$pid) {
    chdir $dir or die;
    open STDOUT, '>', $ofile or die;
    open STDERR, '>', $efile or die;
    open STDIN, '<', '/dev/null' or die;
    exec @cmd or exit 127;
  }
  waitpid($pid, 0);
  my $status = $?;
  local $/;
  open my $o, '<', $ofile; my $out = <$o> // ''; close $o;
  open my $e, '<', $efile; my $err = <$e> // ''; close $e;
  unlink $ofile, $efile;
  return ($status, $out, $err);
}

for my $file (@files) {
  $n++;
  my $name = basename($file);
  my $dir = dirname(abs_path($file));
  open my $fh, '<', $file or die "$file: $!";
  my (@expect, @contains, @errcontains, @args, $errline, $code, $data, $datajson, $values);
  my $cmd = 'exec';
  my $ln = 0;
  while (my $line = <$fh>) {
    $ln++;
    if ($line =~ m{//\s*expect:\s?(.*?)\s*$}) { push @expect, $1; }
    elsif ($line =~ m{//\s*expect error:\s*(.*?)\s*$}) { $errline = "$name:$1"; $code //= 65; }
    elsif ($line =~ m{//\s*expect stderr:\s*(.*?)\s*$}) { $errline = $1; }
    elsif ($line =~ m{//\s*stderr-contains:\s*(.*?)\s*$}) { push @errcontains, $1; }
    elsif ($line =~ m{//\s*exit:\s*(\d+)}) { $code = $1; }
    elsif ($line =~ m{//\s*data:\s*(\S+)}) { $data = $1; }
    elsif ($line =~ m{//\s*data-json:\s*(.*?)\s*$}) { $datajson = $1; }
    elsif ($line =~ m{//\s*cmd:\s*(\S+)}) { $cmd = $1; }
    elsif ($line =~ m{//\s*args:\s*(.*?)\s*$}) { push @args, split(' ', $1); }
    elsif ($line =~ m{//\s*stdout-contains:\s*(.*?)\s*$}) { push @contains, $1; }
    elsif ($line =~ m{//\s*values\s*$}) { $values = 1; }
  }
  close $fh;
  $code //= 0;
  my $tmpdata;
  if (defined $datajson) {
    my $tfh;
    ($tfh, $tmpdata) = tempfile(SUFFIX => '.json');
    print $tfh $datajson;
    close $tfh;
    $data = $tmpdata;
  }
  if (grep { /\{tmp\}/ } @args) {
    my $tmp = tempdir(CLEANUP => 1);
    s/\{tmp\}/$tmp/g for @args;
  }
  push @args, '--quiet' if $cmd eq 'exec' && !$values;
  my @cmdline = ($ppl, $cmd, $name, (defined $data ? ('--data', $data) : ()), @args);
  my ($status, $out, $err) = run_capture($dir, @cmdline);
  unlink $tmpdata if $tmpdata;
  my @problems;
  if ($status & 127) {
    push @problems, "killed by signal " . ($status & 127);
  } elsif (($status >> 8) != $code) {
    push @problems, "exit status " . ($status >> 8) . ", expected $code";
  }
  my @lines = split /\n/, $out;
  for my $i (0 .. $#expect) {
    my $got = $lines[$i];
    if (!defined $got) { push @problems, "missing output line " . ($i + 1) . ": expected '$expect[$i]'"; last; }
    if ($got ne $expect[$i]) { push @problems, "output line " . ($i + 1) . ": got '$got', expected '$expect[$i]'"; }
  }
  if (@expect && @lines > @expect) {
    push @problems, "unexpected extra output: '$lines[scalar @expect]'";
  }
  for my $c (@contains) {
    push @problems, "no stdout line contains '$c'" unless grep { index($_, $c) >= 0 } @lines;
  }
  for my $c (@errcontains) {
    push @problems, "no stderr line contains '$c'" unless grep { index($_, $c) >= 0 } split /\n/, $err;
  }
  # compile-time warnings ("FILE:L:C: warning: ...") come before everything
  # else on stderr; the first-line checks look past them unless they expect one
  my $errw = $err;
  $errw =~ s/^[^\n]*:\d+:\d+: warning: [^\n]*\n//mg unless defined $errline && $errline =~ /: warning: /;
  if (defined $errline) {
    my ($first) = split /\n/, $errw;
    $first //= '';
    push @problems, "stderr: got '$first', expected '$errline'" if $first ne $errline;
  } elsif ($code == 0 && $errw =~ /\S/ && $cmd eq 'exec') {
    my ($first) = split /\n/, $errw;
    push @problems, "unexpected stderr: '$first'";
  }
  if (@problems) {
    $failed++;
    print "not ok $n - $file\n";
    print "#   $_\n" for @problems;
    print "#   command: @cmdline\n";
  } else {
    print "ok $n - $file\n";
  }
}
print "1..$n\n";
exit($failed ? 1 : 0);
