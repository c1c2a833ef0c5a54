"""Reference MicroPython firmware: andon buttons + bin sensor + stack light, over USB serial (RP2040).

Speaks docs/FIRMWARE_PROTOCOL.md exactly as firmware_bridge/framing.py decodes it. The test suite
compiles it with `mpy-cross` and runs its main loop, unchanged, on MicroPython's WebAssembly port
against the real bridge (tests/integration/test_firmware_micropython.py; the harness in wasm/ plays
the pins and the serial port); `firmware_bridge/simulator.py` plays its part in the other tests, so
keep the two in step. Copy to the board as main.py with `mpremote cp main.py :main.py`.

Pins (Raspberry Pi Pico; change to suit):
    GP14 CALL button to GND (pull-up)   GP15 STOP button / pull cord to GND (pull-up)
    GP16 bin sensor, low = bin empty     GP18 red, GP19 amber, GP20 green, GP21 buzzer (high = on)

Behaviour:
- At boot: a random 32-bit boot id, seq from 0, HELLO with the firmware version.
- HB every second.
- CALL pressed: BTN call (or BTN cancel if this device's call is still open); STOP pressed: BTN stop.
- Bin sensor settled low for 0.5 s: BIN empty; settled high again: BIN full.
- Every BIN/BTN is retransmitted (same boot, same seq) every 0.5 s until the host ACKs its seq, at
  most 10 times; the host drops the duplicates.
- LIGHT/BUZZ from the host set the lamps; with no host frame for 30 s the lamps show amber blink only
  ("link lost"), because a green lamp must not outlive the bridge that knew the line was running.
"""

import os
import select
import sys
import time

import micropython
from machine import Pin

DEVICE = "D1"  # the device id configured for this port on the bridge
STATION = "S1"
BIN_ID = "B-01"
VERSION = "ref-1.0.0"
MAX_FRAME = 128
HB_MS = 1000
RETRY_MS = 500
RETRIES = 10
LINK_TIMEOUT_MS = 30_000

_BOOT_INT = int.from_bytes(os.urandom(4), "big")
BOOT = f"{_BOOT_INT:08X}"
_seq = 0
_pending = {}  # seq -> [frame bytes, tries left, next send ms]


def crc16(data):
    # CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor.
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def frame(type_, *args):
    global _seq
    seq = _seq
    _seq = (_seq + 1) & 0xFFFF
    body = ",".join((DEVICE, type_, BOOT, str(seq)) + args).encode()
    return seq, b"$" + body + b"*" + f"{crc16(body):04X}".encode() + b"\n"


out = sys.stdout.buffer


def send(type_, *args, reliable=False):
    seq, data = frame(type_, *args)
    out.write(data)
    if reliable:
        if len(_pending) >= 8:  # bounded: the oldest unacknowledged event gives way
            del _pending[min(_pending)]
        _pending[seq] = [data, RETRIES, time.ticks_add(time.ticks_ms(), RETRY_MS)]


def parse(line):
    """Return (type, args) of a valid host frame for this device, else None."""
    if len(line) < 8 or line[0:1] != b"$" or line[-5:-4] != b"*":
        return None
    body, crc_hex = line[1:-5], line[-4:]
    try:
        if crc16(body) != int(crc_hex.decode(), 16):
            return None
        parts = body.decode().split(",")
    except (ValueError, UnicodeError):
        return None
    if len(parts) < 4 or parts[0] != DEVICE:
        return None
    return parts[1], parts[4:]


class Debounced:
    def __init__(self, pin, settle_ms):
        self.pin, self.settle_ms = pin, settle_ms
        self.stable = pin.value()
        self.since = time.ticks_ms()

    def changed(self, now):
        """The new settled value when it changes, else None."""
        raw = self.pin.value()
        if raw == self.stable:
            self.since = now
            return None
        if time.ticks_diff(now, self.since) >= self.settle_ms:
            self.stable = raw
            return raw
        return None


def main():
    micropython.kbd_intr(-1)  # a stray 0x03 from the host must not stop the firmware
    call_btn = Debounced(Pin(14, Pin.IN, Pin.PULL_UP), 30)
    stop_btn = Debounced(Pin(15, Pin.IN, Pin.PULL_UP), 30)
    bin_sensor = Debounced(Pin(16, Pin.IN, Pin.PULL_UP), 500)  # bins jiggle when parts are taken
    lamps = {"red": Pin(18, Pin.OUT), "amber": Pin(19, Pin.OUT), "green": Pin(20, Pin.OUT)}
    buzzer = Pin(21, Pin.OUT)
    mode = {"red": "off", "amber": "off", "green": "off"}
    call_open = False
    poll = select.poll()
    poll.register(sys.stdin, select.POLLIN)
    buf = bytearray()
    discarding = False
    now = time.ticks_ms()
    last_hb = last_host = now
    heard_host = False
    send("HELLO", VERSION)

    while True:
        now = time.ticks_ms()
        # host -> device: same framing rules as the bridge: max length, resync on "$" and "\n"
        while poll.poll(0):
            byte = sys.stdin.buffer.read(1)
            if not byte:
                break
            if byte == b"$":
                buf, discarding = bytearray(b"$"), False
            elif byte == b"\n":
                msg = None if discarding else parse(bytes(buf).rstrip(b"\r"))
                buf, discarding = bytearray(), False
                if msg:
                    last_host, heard_host = now, True
                    kind, args = msg
                    if kind == "LIGHT" and len(args) == 3:
                        mode = {"red": args[0], "amber": args[1], "green": args[2]}
                    elif kind == "BUZZ" and len(args) == 1:
                        buzzer.value(args[0] == "on")
                    elif kind == "ACK" and len(args) == 1 and args[0].isdigit():
                        _pending.pop(int(args[0]), None)
            elif buf and not discarding:
                buf += byte
                if len(buf) >= MAX_FRAME:
                    buf, discarding = bytearray(), True

        if call_btn.changed(now) == 0:
            send("BTN", "cancel" if call_open else "call", STATION, reliable=True)
            call_open = not call_open
        if stop_btn.changed(now) == 0:
            send("BTN", "stop", STATION, reliable=True)
        level = bin_sensor.changed(now)
        if level is not None:
            send("BIN", BIN_ID, "empty" if level == 0 else "full", reliable=True)

        for seq in list(_pending):
            entry = _pending[seq]
            if time.ticks_diff(now, entry[2]) >= 0:
                if entry[1] <= 0:
                    del _pending[seq]  # the host is gone; HB and availability tell the line
                    continue
                out.write(entry[0])
                entry[1] -= 1
                entry[2] = time.ticks_add(now, RETRY_MS)

        if time.ticks_diff(now, last_hb) >= HB_MS:
            last_hb = now
            send("HB")

        blink_on = (now // 250) % 2 == 0
        if heard_host and time.ticks_diff(now, last_host) > LINK_TIMEOUT_MS:
            shown = {"red": "off", "amber": "blink", "green": "off"}
            buzzer.value(0)
        else:
            shown = mode
        for name, pin in lamps.items():
            state = shown.get(name, "off")
            pin.value(state == "on" or (state == "blink" and blink_on))
        time.sleep_ms(5)


if __name__ == "__main__":  # MicroPython runs main.py as __main__; tests import it for its codec
    main()
