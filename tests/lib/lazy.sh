# Post-copy helpers shared by tests/integration/lazy*.sh.

# lazy_fake_target PORT: a "target" that connects to the source's page
# server and leaves at once, then sends a confirmation with a wrong token;
# the source must answer NO (and then resume its tree).
lazy_fake_target() {
        python3 - "$1" <<'PY' || fail "fake target"
import socket, sys, time
port = int(sys.argv[1])
socket.create_connection(("127.0.0.1", port), timeout=10).close()
deadline = time.time() + 30
while True:
    # Refused until the source listens for the confirmation; reset if
    # CRIU's page server still had it queued.
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"CRYO-LAZY-DONE 0123456789abcdef0123456789abcdef\n")
        answer = s.makefile().readline().strip()
        if answer:
            break
    except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
        pass
    if time.time() > deadline:
        raise SystemExit("the source never answered")
    time.sleep(0.1)
assert answer == "NO", answer
PY
}

# lazy_free_port: a free TCP port on 127.0.0.1.
lazy_free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# lazy_dump_bg PORT DUMP-ARGS...: `cryo dump DUMP-ARGS --lazy-pages` serving
# on 127.0.0.1:PORT, in the background (DUMP_JOB); waits for the checkpoint
# path it prints (CK).
lazy_dump_bg() {
        local port=$1
        shift
        "$CRYO" dump "$@" --lazy-pages --page-server "127.0.0.1:$port" \
                >"$TEST_SCRATCH/dump.out" 2>"$TEST_SCRATCH/dump.err" &
        DUMP_JOB=$!
        echo "$DUMP_JOB" >>"$TEST_SCRATCH/.dump-jobs"
        WAIT_TIMEOUT=60 wait_for test -s "$TEST_SCRATCH/dump.out" ||
                fail "the lazy dump printed no checkpoint: $(cat "$TEST_SCRATCH/dump.err")"
        CK=$(head -n 1 "$TEST_SCRATCH/dump.out")
        [ -d "$CK" ] || fail "lazy dump printed '$CK', not a directory"
}

# lazy_stop_dump_jobs: for cleanup().  A lazy dump left serving by a failed
# test: its CRIU first (it would wait for a target until its timeout), then cryo.
lazy_stop_dump_jobs() {
        local p
        for p in $(cat "$TEST_SCRATCH/.dump-jobs" 2>/dev/null); do
                pkill -KILL -P "$p" -x criu 2>/dev/null || true
                kill -KILL "$p" 2>/dev/null || true
        done
}
