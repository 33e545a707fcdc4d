#!/usr/bin/env python3
"""Compare testssl.sh findings (-p -E --jsonfile) with the TLS profiles of SPEC.md section 5.

Usage: compare.py EXPECTED.json PROFILE=TESTSSL.json ...

For each profile of EXPECTED.json it prints one line, "<profile>: ok", or
"<profile>: FAIL" followed by one indented line per difference:
  missing protocol TLS1_3           listed by the profile, testssl says not offered
  unexpected protocol TLS1_1        offered, not listed
  unclear protocol TLS1 (...)       testssl could not tell (finding quoted)
  missing suite TLS1_2 0xc02f NAME  listed, not accepted
  unexpected suite TLS1_2 0xc028    accepted, not listed
  testssl problem: ...              a scan error, a missing or unreadable JSON file
Exit status: 0 when every profile is ok, 1 otherwise, 2 on bad usage.
"""

import json
import re
import sys

# testssl's protocol finding ids (-p), oldest first.
PROTOCOLS = ["SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3"]

# -E ids: cipher-<proto>_x<hex>, e.g. cipher-tls1_2_xc02f, cipher-tls1_x2f,
# cipher-ssl3_x35. testssl drops leading zeros from the hex id.
CIPHER_ID = re.compile(r"^cipher-(ssl2|ssl3|tls1|tls1_1|tls1_2|tls1_3)_x([0-9a-f]+)$", re.I)
CIPHER_PROTO = {"ssl2": "SSLv2", "ssl3": "SSLv3", "tls1": "TLS1",
                "tls1_1": "TLS1_1", "tls1_2": "TLS1_2", "tls1_3": "TLS1_3"}


def norm_hex(h):
    """'c02f' / '0xc02f' / '2f' -> '0xc02f' / '0x002f' (SSLv2's 3-byte ids keep 6 digits)."""
    v = int(h, 16)
    return "0x%04x" % v if v <= 0xFFFF else "0x%06x" % v


def findings(path):
    """Return (offered, suites, problems) read from one testssl JSON file.

    offered: protocol id -> True / False / the finding text when unclear.
    suites: set of (protocol id, normalised hex id).
    """
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)
    if isinstance(entries, dict):  # --jsonfile-pretty layout
        entries = [e for r in entries.get("scanResult", []) for v in r.values()
                   if isinstance(v, list) for e in v]
    offered, suites, problems = {}, set(), []
    for e in entries:
        eid, finding = str(e.get("id", "")), str(e.get("finding", ""))
        sev = str(e.get("severity", ""))
        if eid in PROTOCOLS:
            low = finding.lower()
            if low.startswith("not offered"):
                offered[eid] = False
            elif low.startswith("offered"):
                offered[eid] = True
            else:
                offered[eid] = finding
            continue
        m = CIPHER_ID.match(eid)
        if m:
            suites.add((CIPHER_PROTO[m.group(1).lower()], norm_hex(m.group(2))))
            continue
        if sev in ("FATAL", "WARN") or eid in ("scanProblem", "engine_problem"):
            problems.append("%s %s: %s" % (sev, eid, finding))
    return offered, suites, problems


def compare(profile, exp, path, names):
    """Return the list of differences for one profile (empty when ok)."""
    try:
        offered, got_suites, diffs = findings(path)
    except (OSError, ValueError) as err:
        return ["testssl problem: cannot read %s: %s" % (path, err)]
    diffs = ["testssl problem: " + p for p in diffs]

    want_protos = set(exp["protocols"])
    for p in PROTOCOLS:
        state = offered.get(p)
        if state is None:
            diffs.append("unclear protocol %s (no finding in %s)" % (p, path))
        elif state is True and p not in want_protos:
            diffs.append("unexpected protocol %s" % p)
        elif state is False and p in want_protos:
            diffs.append("missing protocol %s" % p)
        elif not isinstance(state, bool):
            diffs.append("unclear protocol %s (%r)" % (p, state))

    want_suites = {(p, norm_hex(h)) for p, hs in exp["suites"].items() for h in hs}
    order = {p: i for i, p in enumerate(PROTOCOLS)}
    key = lambda s: (order[s[0]], s[1])
    name = lambda h: (" " + names[h]) if h in names else ""
    for p, h in sorted(want_suites - got_suites, key=key):
        diffs.append("missing suite %s %s%s" % (p, h, name(h)))
    for p, h in sorted(got_suites - want_suites, key=key):
        diffs.append("unexpected suite %s %s%s" % (p, h, name(h)))
    return diffs


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        expected = json.load(f)
    names = {norm_hex(k): v for k, v in expected.get("names", {}).items()}
    files = {}
    for arg in argv[2:]:
        prof, sep, path = arg.partition("=")
        if not sep or prof not in expected["profiles"]:
            print("bad argument %r: want PROFILE=FILE, PROFILE one of %s"
                  % (arg, ", ".join(expected["profiles"])), file=sys.stderr)
            return 2
        files[prof] = path

    failed = False
    for prof, exp in expected["profiles"].items():
        if prof not in files:
            diffs = ["testssl problem: no results given for this profile"]
        else:
            diffs = compare(prof, exp, files[prof], names)
        if diffs:
            failed = True
            print("%s: FAIL" % prof)
            for d in diffs:
                print("  " + d)
        else:
            print("%s: ok" % prof)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
