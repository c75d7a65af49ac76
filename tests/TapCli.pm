# TapCli.pm — what the perl tests of the `ppl` command share: TAP lines,
# files, and running ppl in a scratch directory with a time limit.
#
#   use FindBin; use lib "$FindBin::Bin"; use TapCli;
#   my ($dir, $ppl) = tapcli_setup(shift @ARGV); # cd into a temp dir
#   my ($status, $out, $err) = run_cmd('run', 'm.ppl', '--draws', '10');
#   ok($status == 0, "runs");
#   exit tap_done();                          # prints the plan
package TapCli;

use strict;
use warnings;
use Cwd qw(abs_path);
use Exporter qw(import);
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

our @EXPORT = qw(tapcli_setup ok tap_done slurp spit rows start wait_for run_cmd);

my ($n, $failed) = (0, 0);
my ($ppl, $dir);

# The ppl command (made absolute) and a fresh directory, removed at exit,
# which becomes the working directory; returns (directory, command).
sub tapcli_setup {
  my ($path) = @_;
  $ppl = abs_path($path // '') or die "usage: $0 PPL ...\n";
  $dir = tempdir(CLEANUP => 1);
  chdir $dir or die "$dir: $!";
  return ($dir, $ppl);
}

# ($$): the condition in scalar context, so that a failed match is false
# rather than an empty list.  A message quoted in the name stays on its line.
sub ok($$) {
  my ($cond, $name) = @_;
  $name =~ s/\s*\n\s*/ /g;
  $name =~ s/\s+$//;
  $n++;
  $failed++ unless $cond;
  print(($cond ? "ok" : "not ok") . " $n - $name\n");
  return $cond;
}

# The plan; the exit status for the script (1 when a test failed).
sub tap_done {
  print "1..$n\n";
  return $failed ? 1 : 0;
}

sub slurp { my $f = shift; open my $h, '<', $f or return ''; local $/; my $t = <$h>; close $h; return $t; }
sub spit { my ($f, $t) = @_; open my $h, '>', $f or die "$f: $!"; print $h $t; close $h; }
# A CSV file's lines without its comments.
sub rows { return join "\n", grep { !/^#/ } split /\n/, slurp(shift); }

# ppl with @args in the directory, stdout and stderr into the files named,
# stdin from /dev/null; returns the pid.
sub start {
  my ($out, $err, @args) = @_;
  my $pid = fork();
  die "fork: $!" unless defined $pid;
  if (!$pid) {
    chdir $dir;
    open STDOUT, '>', $out or die;
    open STDERR, '>', $err or die;
    open STDIN, '<', '/dev/null' or die;
    exec $ppl, @args or exit 127;
  }
  return $pid;
}

# The wait status of pid, or undef when it has not ended within $secs.
sub wait_for {
  my ($pid, $secs) = @_;
  my $end = time + $secs;
  while (time < $end) {
    return $? if waitpid($pid, WNOHANG) == $pid;
    sleep 0.05;
  }
  return undef;
}

# ppl with @args, killed after 300 s: (exit status, stdout, stderr).  The
# status is 128 + the signal's number for a process a signal ended (as a
# shell says it), -1 for one that ran out of time.
sub run_cmd {
  my (@args) = @_;
  my $pid = start("$dir/out.txt", "$dir/err.txt", @args);
  my $st = wait_for($pid, 300);
  if (!defined $st) {
    kill 'KILL', $pid;
    waitpid($pid, 0);
    $st = -1;
  } elsif ($st & 127) {
    $st = 128 + ($st & 127);
  } else {
    $st >>= 8;
  }
  return ($st, slurp("$dir/out.txt"), slurp("$dir/err.txt"));
}

1;
