#!/usr/bin/env python3
"""Drives a VPP API socket with VPP's own Python client (vpp_papi).

    probe.py DEFS_DIR SOCKET show [--text]
        Connects, dumps interfaces, memifs, memif socket files, vhost-user
        interfaces and bridge domains, disconnects; prints them as JSON
        (or, with --text, as `vppctl show interface / show memif / show
        mode / show bridge-domain` would tell them).
    probe.py DEFS_DIR SOCKET session
        Connects, pings, dumps; then with the messages the VPP engine sends
        registers a memif socket file, creates a memif (master, ethernet)
        on it, sets it up, creates bridge domain 77, puts the memif in it;
        dumps; undoes all of it in reverse; dumps; disconnects. Prints
        every step's outcome as JSON.

DEFS_DIR holds the `.api.json` files api_json.py wrote.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import api_json  # noqa: E402
from vpp_papi import VPPApiClient  # noqa: E402

ALL = 0xFFFFFFFF
ADMIN_UP = 1


def connect(defs_dir, socket):
    vpp = VPPApiClient(
        apifiles=api_json.api_files(defs_dir), server_address=socket, read_timeout=5
    )
    vpp.connect("vpp-papi-probe")
    return vpp


def view(vpp):
    sockets = {s.socket_id: s.socket_filename for s in vpp.api.memif_socket_filename_dump()}
    bds = vpp.api.bridge_domain_dump(bd_id=ALL)
    member_of = {}
    for bd in bds:
        for m in bd.sw_if_details:
            member_of[m.sw_if_index] = bd.bd_id
    return {
        "interfaces": [
            {
                "sw_if_index": int(i.sw_if_index),
                "name": i.interface_name,
                "dev_type": i.interface_dev_type,
                "admin_up": bool(int(i.flags) & ADMIN_UP),
                "mac": str(i.l2_address),
                "bridge_domain": member_of.get(int(i.sw_if_index)),
            }
            for i in vpp.api.sw_interface_dump(sw_if_index=ALL)
        ],
        "memifs": [
            {
                "sw_if_index": int(m.sw_if_index),
                "name": m.if_name,
                "id": m.id,
                "role": "master" if int(m.role) == 0 else "slave",
                "mode": ["ethernet", "ip", "punt/inject"][int(m.mode)],
                "socket_id": m.socket_id,
                "socket": sockets.get(m.socket_id),
                "admin_up": bool(int(m.flags) & ADMIN_UP),
                "ring_size": m.ring_size,
                "buffer_size": m.buffer_size,
            }
            for m in vpp.api.memif_dump()
        ],
        "memif_sockets": {str(k): v for k, v in sorted(sockets.items())},
        "vhost_user": [
            {
                "sw_if_index": int(v.sw_if_index),
                "name": v.interface_name,
                "socket": v.sock_filename,
                "is_server": bool(v.is_server),
            }
            for v in vpp.api.sw_interface_vhost_user_dump(sw_if_index=ALL)
        ],
        "bridge_domains": [
            {
                "bd_id": bd.bd_id,
                "tag": bd.bd_tag,
                "flood": bool(bd.flood),
                "learn": bool(bd.learn),
                "forward": bool(bd.forward),
                "members": sorted(int(m.sw_if_index) for m in bd.sw_if_details),
            }
            for bd in bds
        ],
    }


def text(v):
    lines = ["vpp# show interface (through vpp_papi)"]
    for i in v["interfaces"]:
        lines.append("  %-24s %3d  %s" % (i["name"], i["sw_if_index"], "up" if i["admin_up"] else "down"))
    lines.append("vpp# show mode")
    for i in v["interfaces"]:
        mode = "l2 bridge bd_id %d" % i["bridge_domain"] if i["bridge_domain"] is not None else "l3"
        lines.append("  %s %s" % (mode, i["name"]))
    lines.append("vpp# show memif")
    for sid, path in v["memif_sockets"].items():
        lines.append("  socket-id %s filename %s" % (sid, path))
    for m in v["memifs"]:
        lines.append(
            "  interface %s socket-id %d id %d mode %s role %s admin-%s"
            % (m["name"], m["socket_id"], m["id"], m["mode"], m["role"], "up" if m["admin_up"] else "down")
        )
    lines.append("vpp# show bridge-domain")
    for bd in v["bridge_domains"]:
        lines.append("  bd_id %d tag %r members %s" % (bd["bd_id"], bd["tag"], bd["members"]))
    return "\n".join(lines)


def check(reply, what):
    if reply.retval != 0:
        raise SystemExit("%s answered retval %d" % (what, reply.retval))
    return reply


def session(vpp, socket_file):
    steps = {}
    steps["ping"] = vpp.api.control_ping().retval
    steps["before"] = view(vpp)
    r = check(
        vpp.api.memif_socket_filename_add_del_v2(is_add=True, socket_id=ALL, socket_filename=socket_file),
        "memif_socket_filename_add_del_v2",
    )
    socket_id = r.socket_id
    r = check(
        vpp.api.memif_create_v2(
            role=0, mode=0, rx_queues=1, tx_queues=1, id=5, socket_id=socket_id,
            ring_size=1024, buffer_size=2048, hw_addr="02:fe:00:00:00:05", secret="",
        ),
        "memif_create_v2",
    )
    sw_if_index = r.sw_if_index
    check(vpp.api.sw_interface_set_flags(sw_if_index=sw_if_index, flags=ADMIN_UP), "sw_interface_set_flags")
    check(
        vpp.api.bridge_domain_add_del_v2(
            bd_id=77, is_add=True, flood=True, uu_flood=True, forward=True, learn=True, bd_tag="papi"
        ),
        "bridge_domain_add_del_v2",
    )
    check(
        vpp.api.sw_interface_set_l2_bridge(rx_sw_if_index=sw_if_index, bd_id=77, enable=True),
        "sw_interface_set_l2_bridge",
    )
    steps["socket_id"] = socket_id
    steps["sw_if_index"] = int(sw_if_index)
    steps["made"] = view(vpp)
    check(
        vpp.api.sw_interface_set_l2_bridge(rx_sw_if_index=sw_if_index, bd_id=77, enable=False),
        "sw_interface_set_l2_bridge",
    )
    check(vpp.api.memif_delete(sw_if_index=sw_if_index), "memif_delete")
    check(vpp.api.bridge_domain_add_del_v2(bd_id=77, is_add=False), "bridge_domain_add_del_v2")
    check(
        vpp.api.memif_socket_filename_add_del_v2(is_add=False, socket_id=socket_id, socket_filename=""),
        "memif_socket_filename_add_del_v2",
    )
    steps["after"] = view(vpp)
    return steps


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    defs_dir, socket, command = sys.argv[1:4]
    vpp = connect(defs_dir, socket)
    try:
        if command == "show":
            v = view(vpp)
            print(text(v) if "--text" in sys.argv[4:] else json.dumps(v, indent=1))
        elif command == "session":
            print(json.dumps(session(vpp, os.path.join(os.path.dirname(socket), "papi-memif.sock")), indent=1))
        else:
            sys.exit(__doc__)
    finally:
        vpp.disconnect()


if __name__ == "__main__":
    main()
