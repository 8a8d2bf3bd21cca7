#!/usr/bin/env python3
"""Test vectors for our VPP codecs, made and checked by VPP's own packer.

    codec_vectors.py make DEFS_DIR OUT.json MESSAGE...
        For each message: non-zero values, distinct from field to field
        (header included), packed by vpp_papi. Writes
        [{"name", "header": {...}, "fields": {...}, "rust": {...}, "hex"}]:
        `fields` as vpp_papi takes them, `rust` the same values as our
        generated types take them (a union as its bytes), `hex` vpp_papi's
        whole message.
    codec_vectors.py check DEFS_DIR OURS.json
        OURS.json: [{"name", "hex"}] as our codecs encoded the same values.
        vpp_papi must decode each into the values it was given and pack it
        back into the same bytes. Exits 1 naming every message that differs.

DEFS_DIR holds the `.api.json` files api_json.py wrote; memclnt's come from
vpp_papi itself (VPP's own).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import api_json  # noqa: E402
from vpp_papi import vpp_serializer  # noqa: E402
from vpp_papi.vpp_papi import VPPApiJSONFiles  # noqa: E402

WIDTH = {"u8": 1, "i8": 1, "u16": 2, "i16": 2, "u32": 4, "i32": 4, "u64": 8, "i64": 8}


def load(defs_dir):
    messages = {}
    for path in api_json.api_files(defs_dir):
        with open(path) as f:
            m, _ = VPPApiJSONFiles.process_json_file(f)
        messages.update(m)
    return messages


class Values:
    """Hands out distinct non-zero values."""

    def __init__(self):
        self.n = 0

    def next(self):
        self.n += 1
        return self.n

    def int(self, t):
        n = self.next()
        if t == "f64":
            return n + 0.5
        bits = 8 * WIDTH[t]
        # Every byte non-zero, and distinct between fields.
        v = 0
        for i in range(WIDTH[t]):
            v |= (((n * 37 + i * 11) % 250) + 1) << (8 * i)
        if t.startswith("i"):
            v &= (1 << (bits - 1)) - 1
        return v

    def bytes(self, n):
        k = self.next()
        return bytes(((k * 29 + i * 7) % 250) + 1 for i in range(n))

    def text(self, limit):
        k = self.next()
        text = "v%d-%s" % (k, "abcdefghijklmnopqrstuvwxyz"[k % 26] * 40)
        return text[: max(1, min(len(text), (limit or 40) - 1))]


def value(packer, values, length_fields):
    """(papi value, our value) for one field's packer."""
    P = vpp_serializer
    if isinstance(packer, P.BaseTypes):
        if packer._type == "bool":
            values.next()
            return True, True
        v = values.int(packer._type)
        return v, v
    if isinstance(packer, P.String):
        t = values.text(packer.limit if packer.fixed else 0)
        return t, t
    if isinstance(packer, P.FixedList_u8):
        b = values.bytes(packer.num)
        return b, list(b)
    if isinstance(packer, P.FixedList):
        pairs = [value(packer.packer, values, length_fields) for _ in range(packer.num)]
        return [p for p, _ in pairs], [r for _, r in pairs]
    if isinstance(packer, (P.VLAList, P.VLAList_legacy)):
        pairs = [value(packer.packer, values, length_fields) for _ in range(2)]
        length_fields.append(2)
        return [p for p, _ in pairs], [r for _, r in pairs]
    if isinstance(packer, P.VPPEnumType):
        members = sorted(int(m) for m in packer.enum)
        v = members[-1] if members and members[-1] else values.next()
        values.next()
        return v, v
    if isinstance(packer, P.VPPUnionType):
        # The widest member, filled: our types hold a union as its bytes.
        name, member = max(packer.packers.items(), key=lambda kv: kv[1].size)
        b = values.bytes(member.size)
        return {name: b}, list(b) + [0] * (packer.size - member.size)
    if isinstance(packer, P.VPPTypeAlias):
        return value(packer.packer, values, length_fields)
    if isinstance(packer, P.VPPType):
        return record(packer, values)
    raise TypeError("no value for %r" % packer)


def header_fields(msg):
    """The header: the leading run of `_vl_msg_id`, `client_index`,
    `context`, `pid` (control_ping_reply has a client_index of its own
    after `retval`)."""
    fields = []
    for f in msg.fields:
        if f not in HEADER:
            break
        fields.append(f)
    return fields


def record(t, values, header=()):
    papi, ours = {}, {}
    lengths = {}
    for name, packer in zip(t.fields, t.packers):
        if name in header:
            continue
        if isinstance(packer, vpp_serializer.VLAList):
            pending = []
            papi[name], ours[name] = value(packer, values, pending)
            lengths[packer.length_field] = len(papi[name])
        else:
            papi[name], ours[name] = value(packer, values, [])
    # A count field says how many its array holds.
    for field, n in lengths.items():
        papi[field] = ours[field] = n
    return papi, ours


HEADER = ("_vl_msg_id", "client_index", "context", "pid")
FIXED_IDS = {"sockclnt_create": 15, "sockclnt_create_reply": 16}


def make(defs_dir, out, names):
    messages = load(defs_dir)
    values = Values()
    vectors = []
    for name in names:
        msg = messages[name]
        head = header_fields(msg)
        header = {f: values.int("u16" if f == "_vl_msg_id" else "u32") for f in head}
        # The two ids VPP fixes (memclnt's messages are numbered first).
        header["_vl_msg_id"] = FIXED_IDS.get(name, header["_vl_msg_id"])
        papi, ours = record(msg, values, header=head)
        vectors.append({
            "name": name,
            "header": header,
            "header_fields": head,
            "fields": {k: (list(v) if isinstance(v, bytes) else v) for k, v in papi.items()},
            "rust": ours,
            "hex": msg.pack(dict(papi, **header)).hex(),
        })
    with open(out, "w") as f:
        json.dump(vectors, f, indent=1, default=lambda b: list(b))


def plain(packer, v):
    """What vpp_papi decoded, as the dicts and lists its packer takes (its
    namedtuples rename `_vl_msg_id`; a union packs its first member, so
    give it the widest, the one our values filled)."""
    P = vpp_serializer
    if isinstance(v, (bytes, bytearray)):
        return v
    if isinstance(packer, P.VPPUnionType):
        name, member = max(packer.packers.items(), key=lambda kv: kv[1].size)
        return {name: plain(member, getattr(v, name))}
    if isinstance(packer, P.VPPTypeAlias):
        return plain(packer.packer, v)
    if isinstance(packer, P.VPPType):
        return {f: plain(p, x) for f, p, x in zip(packer.fields, packer.packers, v)}
    if isinstance(packer, (P.FixedList, P.VLAList, P.VLAList_legacy)):
        return [plain(packer.packer, x) for x in v]
    return v


def check(defs_dir, ours_path):
    messages = load(defs_dir)
    with open(ours_path) as f:
        ours = json.load(f)
    bad = []
    for v in ours:
        msg = messages[v["name"]]
        data = bytes.fromhex(v["hex"])
        decoded, size = msg.unpack(data, ntc=True)
        if size != len(data):
            bad.append("%s: vpp_papi read %d of our %d bytes" % (v["name"], size, len(data)))
            continue
        again = msg.pack(plain(msg, decoded))
        if again != data:
            bad.append("%s: vpp_papi packs what it decoded from ours differently:\n  ours   %s\n  theirs %s"
                       % (v["name"], data.hex(), again.hex()))
            continue
        theirs, _ = msg.unpack(bytes.fromhex(v["theirs"]), ntc=True)
        if theirs != decoded:
            bad.append("%s: decoded %r, expected %r" % (v["name"], decoded, theirs))
    for b in bad:
        print(b)
    print("vpp_papi decoded %d of our messages, %d differ" % (len(ours), len(bad)))
    return 1 if bad else 0


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
