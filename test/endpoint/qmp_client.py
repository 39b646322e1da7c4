#!/usr/bin/env python3
"""A third-party QMP client: Python's standard library only, nothing from Bitmap Lab.

Drives a QMP server on a unix socket (QEMU, or `bitmap-lab qmp --socket`) through
bitmap work and prints every answer normalised (sorted keys, no timestamps, no
build string), so the same script run against both must print the same text.

Usage: qmp_client.py SOCKET
"""
import json
import socket
import sys


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.lines = self.sock.makefile("rb")

    def receive(self):
        line = self.lines.readline()
        if not line:
            raise EOFError("the server closed the connection")
        if not line.endswith(b"\r\n"):
            raise ValueError("QMP lines end in CR LF, got %r" % line)
        return json.loads(line)

    def execute(self, command, **arguments):
        request = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            message = self.receive()
            if "event" in message:
                show("event", {"event": message["event"], "data": message.get("data")})
            else:
                return message


def show(label, value):
    print(label, json.dumps(value, sort_keys=True))


def run(path):
    qmp = Qmp(path)
    greeting = qmp.receive()["QMP"]
    show("greeting", {"version": greeting["version"]["qemu"], "capabilities": greeting["capabilities"]})
    show("qmp_capabilities", qmp.execute("qmp_capabilities"))

    show("blockdev-add", qmp.execute("blockdev-add", driver="null-co", **{"node-name": "n0", "size": 64 << 20}))
    show("add b0", qmp.execute("block-dirty-bitmap-add", node="n0", name="b0"))
    show("add b1", qmp.execute("block-dirty-bitmap-add", node="n0", name="b1", granularity=4096))
    show("add b2", qmp.execute("block-dirty-bitmap-add", node="n0", name="b2", granularity=512, disabled=True))
    show("add b0 again", qmp.execute("block-dirty-bitmap-add", node="n0", name="b0"))

    for command in ["write 0 64k", "write -z 1M 4k", "write 0x1ffff 2", "discard 2M 64k", "write 63M 2M"]:
        show("qemu-io " + command, qmp.execute("human-monitor-command", **{"command-line": 'qemu-io n0 "%s"' % command}))

    def digests(label):
        for name in ["b0", "b1", "b2"]:
            show("%s sha256 %s" % (label, name), qmp.execute("x-debug-block-dirty-bitmap-sha256", node="n0", name=name))

    digests("after writes")
    show("transaction", qmp.execute("transaction", actions=[
        {"type": "block-dirty-bitmap-add", "data": {"node": "n0", "name": "b3", "granularity": 512}},
        {"type": "block-dirty-bitmap-merge", "data": {"node": "n0", "target": "b3", "bitmaps": ["b1", {"node": "n0", "name": "b2"}]}},
        {"type": "block-dirty-bitmap-clear", "data": {"node": "n0", "name": "b0"}},
        {"type": "block-dirty-bitmap-disable", "data": {"node": "n0", "name": "b1"}},
    ]))
    show("failing transaction", qmp.execute("transaction", actions=[
        {"type": "block-dirty-bitmap-add", "data": {"node": "n0", "name": "b4"}},
        {"type": "block-dirty-bitmap-remove", "data": {"node": "n0", "name": "nope"}},
    ]))
    digests("after transactions")
    show("sha256 b3", qmp.execute("x-debug-block-dirty-bitmap-sha256", node="n0", name="b3"))
    show("query-named-block-nodes", qmp.execute("query-named-block-nodes"))
    show("unknown command", qmp.execute("no-such-command"))
    show("quit", qmp.execute("quit"))


if __name__ == "__main__":
    run(sys.argv[1])
