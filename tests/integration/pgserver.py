"""A PostgreSQL server of the test's own, for the gateway's PostgreSQL backend.

Standard library only. The server binaries come from Debian's postgresql
package (/usr/lib/postgresql/<version>/bin, or VISAVIS_PG_BIN); installed()
says why not when they are missing, so that a test can skip with that line.

    srv = pgserver.Server()          initdb into a new temporary folder, start
    srv.new_database()               a fresh database: its connection URL
    srv.sql('SELECT 1', db)          psql, tuples only: the output lines
    srv.stop() / srv.start()         a clean stop (SIGINT: "fast") and a start
    srv.crash()                      SIGKILL: the server goes as a crash takes it
    srv.close()                      stop, remove the folder

The server runs as a child process (never daemonized), so a test that is
killed takes it along (harness.register_child); it listens on a free port of
127.0.0.1 (trust authentication, loopback only) and on a socket in its
folder. As root, initdb and the server run as the `postgres` user, since
PostgreSQL refuses to run as root. fsync is off: the tests check the
gateway, not the disk (a crashed server loses nothing it was told to keep
unless the machine goes down too).
"""

import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import free_port

START_DEADLINE = float(os.environ.get('VISAVIS_TEST_PG_START_DEADLINE', '60'))
READY_RE = re.compile(r'database system is ready to accept connections')


def bindir():
    """The folder with initdb, postgres and psql, or None."""
    env = os.environ.get('VISAVIS_PG_BIN')
    if env:
        return env if os.access(os.path.join(env, 'postgres'), os.X_OK) else None
    found = []
    for d in glob.glob('/usr/lib/postgresql/*/bin'):
        if all(os.access(os.path.join(d, p), os.X_OK) for p in ('initdb', 'postgres', 'psql')):
            m = re.search(r'/(\d+)/bin$', d)
            found.append((int(m.group(1)) if m else 0, d))
    return max(found)[1] if found else None


def installed():
    """None when a server can be started here, else the reason it cannot."""
    if not bindir():
        return ('PostgreSQL server not installed (no initdb/postgres/psql under '
                '/usr/lib/postgresql/*/bin; apt-get install postgresql, or set VISAVIS_PG_BIN)')
    if os.geteuid() == 0:
        try:
            pwd.getpwnam('postgres')
        except KeyError:
            return 'running as root and there is no postgres user to run the server as'
    return None


class Server:
    _dbs = 0

    def __init__(self, settings=(), on_child=None):
        why = installed()
        if why:
            raise RuntimeError(why)
        self.bin = bindir()
        self.dir = tempfile.mkdtemp(prefix='visavis-pg-')
        self.data = os.path.join(self.dir, 'data')
        self.log = os.path.join(self.dir, 'server.log')
        self.port = free_port()
        self.settings = list(settings)
        self.on_child = on_child
        self.proc = None
        self.user = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam('postgres')
            self.user = 'postgres'
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run([os.path.join(self.bin, 'initdb'), '-D', self.data, '-U', 'postgres',
                   '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync'])
        self.start()

    def _run(self, argv, check=True, timeout=120):
        p = subprocess.run(argv, user=self.user, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           cwd=self.dir)
        if check and p.returncode != 0:
            raise RuntimeError('%s failed (%d): %s' % (os.path.basename(argv[0]), p.returncode,
                                                      p.stderr.decode('utf-8', 'replace')[-2000:]))
        return p

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        """Start the server on its port, and wait for its "ready" line."""
        if self.running:
            raise RuntimeError('the PostgreSQL server is running already')
        offset = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        argv = [os.path.join(self.bin, 'postgres'), '-D', self.data, '-p', str(self.port),
                '-k', self.dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off',
                '-c', 'full_page_writes=off', '-c', 'max_connections=200',
                '-c', 'logging_collector=off']
        for s in self.settings:
            argv += ['-c', s]
        with open(self.log, 'ab') as logf:
            if self.user:
                os.chown(self.log, pwd.getpwnam(self.user).pw_uid, -1)
            self.proc = subprocess.Popen(argv, user=self.user, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf, cwd=self.dir,
                                         start_new_session=True)
        if self.on_child:
            self.on_child(self.proc)
        deadline = time.monotonic() + START_DEADLINE
        while True:
            with open(self.log, 'rb') as f:
                f.seek(offset)
                if READY_RE.search(f.read().decode('utf-8', 'replace')):
                    return self
            if self.proc.poll() is not None:
                raise RuntimeError('the PostgreSQL server exited (%s) before it was ready:\n%s'
                                   % (self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                self.crash()
                raise RuntimeError('the PostgreSQL server was not ready within %.0f s:\n%s'
                                   % (START_DEADLINE, self.log_tail()))
            time.sleep(0.05)

    def stop(self, sig=signal.SIGINT, timeout=60):
        """Stop the server: SIGINT is PostgreSQL's "fast" shutdown (clients are
        told and cut off, the data is flushed); SIGQUIT its "immediate" one."""
        if not self.running:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError('the PostgreSQL server did not stop within %.0f s' % timeout)

    def crash(self):
        """SIGKILL to the postmaster: its backends see it die and exit."""
        if self.running:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        self.stop()
        return self.start()

    def close(self):
        try:
            self.stop()
        finally:
            self.crash()
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n=30):
        try:
            with open(self.log, 'rb') as f:
                return '\n'.join(f.read().decode('utf-8', 'replace').splitlines()[-n:])
        except OSError:
            return '(no log)'

    # -- databases ---------------------------------------------------------

    def url(self, db='postgres'):
        return 'postgresql://postgres@127.0.0.1:%d/%s' % (self.port, db)

    def sql(self, sql, db='postgres', check=True):
        """Runs sql with psql (tuples only, unaligned, | between columns);
        returns the output lines."""
        p = self._run([os.path.join(self.bin, 'psql'), '-X', '-q', '-A', '-t', '-v',
                       'ON_ERROR_STOP=1', '-h', self.dir, '-p', str(self.port), '-U', 'postgres',
                       '-d', db, '-c', sql], check=check)
        return p.stdout.decode('utf-8', 'replace').splitlines()

    def new_database(self):
        """A fresh, empty database; returns its connection URL."""
        Server._dbs += 1
        name = 't%d_%d' % (os.getpid(), Server._dbs)
        self.sql('CREATE DATABASE "%s"' % name)
        return self.url(name)
