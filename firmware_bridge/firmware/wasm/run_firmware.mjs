// Runs the reference firmware (../main.py) unchanged under the real MicroPython, its WebAssembly port,
// with the board's few hardware modules played by this harness:
//
//   node run_firmware.mjs MAIN_PY SERIAL_FD CONTROL_FD
//
// SERIAL_FD is the master side of a pty (inherited, non-blocking): the firmware's USB serial. What
// the firmware writes to sys.stdout goes there, and the bridge's bytes come back through
// select.poll / sys.stdin. CONTROL_FD (inherited, non-blocking) carries input pin levels from the
// test, one "PIN=LEVEL" line each ("14=0" presses the CALL button, "16=0" empties the bin).
// On stdout, one line each: "PIN n v" for an output pin change (lamps, buzzer), "TX frame" for
// every frame the firmware wrote (retransmissions too), "RX frame" for every line it read.
//
// Everything the firmware computes (framing, CRC, debounce, retransmission, lamp logic) runs in
// MicroPython; only machine.Pin, os.urandom and the serial port's file descriptor are stand-ins,
// because the WebAssembly port has no board. The main loop is synchronous, so every I/O call here
// is too (fs.readSync/writeSync on non-blocking descriptors).
import fs from "node:fs";
import crypto from "node:crypto";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const [mainPath, serialArg, controlArg] = process.argv.slice(2);
const serialFd = Number(serialArg);
const controlFd = Number(controlArg);
const inbox = [];
const levels = new Map();
const outputs = new Map();
const chunk = Buffer.alloc(4096);
let controlText = "";
let rxLine = [];

function readNonBlocking(fd) {
  try {
    const n = fs.readSync(fd, chunk, 0, chunk.length, null);
    return n > 0 ? chunk.subarray(0, n) : null;
  } catch (err) {
    if (err.code === "EAGAIN" || err.code === "EWOULDBLOCK") return null;
    if (err.code === "EIO") return null; // pty with no reader on the other side yet
    throw err;
  }
}

function pumpControl() {
  let data;
  while ((data = readNonBlocking(controlFd)) !== null) {
    controlText += data.toString("ascii");
    let nl;
    while ((nl = controlText.indexOf("\n")) >= 0) {
      const [pin, level] = controlText.slice(0, nl).trim().split("=");
      controlText = controlText.slice(nl + 1);
      if (pin !== undefined && level !== undefined) levels.set(Number(pin), Number(level));
    }
  }
}

const hw = {
  available() {
    let data;
    while ((data = readNonBlocking(serialFd)) !== null) for (const b of data) inbox.push(b);
    return inbox.length > 0;
  },
  read_byte() {
    if (inbox.length === 0) return -1;
    const b = inbox.shift();
    if (b === 10) {
      fs.writeSync(1, `RX ${Buffer.from(rxLine).toString("latin1")}\n`);
      rxLine = [];
    } else if (rxLine.length < 512) rxLine.push(b);
    return b;
  },
  write(text) {
    for (const line of text.split("\n")) if (line) fs.writeSync(1, `TX ${line}\n`);
    const buf = Buffer.from(text, "ascii");
    let off = 0;
    while (off < buf.length) {
      try {
        off += fs.writeSync(serialFd, buf, off, buf.length - off);
      } catch (err) {
        if (err.code !== "EAGAIN") throw err; // a full pty: wait for the bridge to read
      }
    }
  },
  pin_get(pin) {
    pumpControl();
    return levels.has(pin) ? levels.get(pin) : 1; // inputs are pulled up: idle reads 1
  },
  pin_set(pin, value) {
    if (outputs.get(pin) !== value) {
      outputs.set(pin, value);
      fs.writeSync(1, `PIN ${pin} ${value}\n`);
    }
  },
  urandom_hex(n) {
    return crypto.randomBytes(n).toString("hex");
  },
};

const shims = `
import sys, hw

class _Module:
    pass

class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 2

    def __init__(self, pin, mode=0, pull=None):
        self.pin = pin

    def value(self, v=None):
        if v is None:
            return hw.pin_get(self.pin)
        hw.pin_set(self.pin, 1 if v else 0)

machine = _Module()
machine.Pin = Pin

class _In:
    def read(self, n):
        b = hw.read_byte()
        return b"" if b < 0 else bytes([b])

class _Out:
    def write(self, data):
        hw.write(bytes(data).decode())
        return len(data)

class _Stream:
    def __init__(self, buffer):
        self.buffer = buffer

class _Poll:
    def register(self, obj, mask=1):
        pass

    def poll(self, timeout=-1):
        return [(None, 1)] if hw.available() else []

select = _Module()
select.POLLIN = 1
select.poll = _Poll

board_sys = _Module()
board_sys.stdin = _Stream(_In())
board_sys.stdout = _Stream(_Out())

import os as _os
board_os = _Module()
board_os.urandom = lambda n: bytes.fromhex(hw.urandom_hex(n))

sys.modules["machine"] = machine
sys.modules["select"] = select
sys.modules["sys"] = board_sys
sys.modules["os"] = board_os
`;

const mp = await loadMicroPython({
  stdout: (line) => process.stderr.write(`firmware stdout: ${line}\n`),
  stderr: (line) => process.stderr.write(`firmware stderr: ${line}\n`),
});
mp.registerJsModule("hw", hw);
mp.runPython(shims);
fs.writeSync(1, "READY\n");
// Runs the firmware's main loop; it never returns (the test kills this process).
mp.runPython(`exec(${JSON.stringify(fs.readFileSync(mainPath, "utf8"))}, {"__name__": "__main__"})`);
