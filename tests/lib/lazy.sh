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
