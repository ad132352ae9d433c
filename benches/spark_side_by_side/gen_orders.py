#!/usr/bin/env python3
"""Seeded input for the orders pipeline (examples/orders/query.toml) at benchmark size.

    gen_orders.py --out-dir DIR --customers FILE [--files 100] [--orders 10000] [--seed 7]

Writes DIR/orders-NNNNN.json (one JSON object per line, the fields of examples/orders/input:
order_id, ts, customer, amount — a number, or a numeric string in 20 % of the lines — and an
optional note), file f covering event time [start + f min, start + f + 1 min) with 5 % of its
orders 11–30 minutes late, 2 % non-positive amounts and 3 % "test…" notes (both filtered out),
customer keys c-1 … c-1050 of which c-1001 … c-1050 are not in the customers table (dropped by
the inner join). Each file is written under a `.` name, renamed into place and given an mtime
strictly increasing in file order (both engines take files in mtime order). FILE gets the
customers table's rows (customer, country, tier) as JSON lines, for `microbatch load-table`.
Same arguments => byte-identical files.
"""
import argparse
import datetime as dt
import os
import random

COUNTRIES = ["NO", "SE", "DK", "FI", "IS", "DE", "NL", "FR"]
TIERS = ["free", "silver", "gold"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out-dir", required=True)
    p.add_argument("--customers", required=True)
    p.add_argument("--files", type=int, default=100)
    p.add_argument("--orders", type=int, default=10000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--num-customers", type=int, default=1000)
    a = p.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out_dir, exist_ok=True)
    with open(a.customers, "w") as fh:
        for c in range(1, a.num_customers + 1):
            fh.write(f'{{"customer":"c-{c}","country":"{rng.choice(COUNTRIES)}",'
                     f'"tier":"{rng.choice(TIERS)}"}}\n')
    start = dt.datetime(2026, 12, 1, 10, 0, 0)
    mtime0 = 1_780_000_000
    for f in range(a.files):
        lines = []
        for i in range(a.orders):
            t = start + dt.timedelta(minutes=f, seconds=rng.random() * 60)
            if rng.random() < 0.05:
                t -= dt.timedelta(minutes=rng.uniform(11, 30))
            ts = t.strftime("%Y-%m-%dT%H:%M:%S")
            cust = rng.randint(1, a.num_customers + 50)
            r = rng.random()
            cents = rng.randint(-5000, 0) if r < 0.02 else rng.randint(50, 50000)
            amount = f"{cents / 100:.2f}"
            amount_json = f'"{amount}"' if rng.random() < 0.2 else amount
            r = rng.random()
            note = ',"note":"test order"' if r < 0.03 else (',"note":"gift"' if r < 0.13 else "")
            lines.append(f'{{"order_id":"o{f}_{i}","ts":"{ts}","customer":"c-{cust}",'
                         f'"amount":{amount_json}{note}}}\n')
        name = f"orders-{f:05d}.json"
        tmp = os.path.join(a.out_dir, "." + name)
        with open(tmp, "w") as fh:
            fh.writelines(lines)
        os.utime(tmp, (mtime0 + 60 * f, mtime0 + 60 * f))
        os.rename(tmp, os.path.join(a.out_dir, name))


if __name__ == "__main__":
    main()
