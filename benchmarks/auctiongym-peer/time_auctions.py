#!/usr/bin/env python3
"""The AuctionGym peer of `adsim bench simulate` (DESIGN.md section 9): auctions per second of AuctionGym's loop.

AuctionGym (Jeunen et al., amzn/auction-gym, pure Python and numpy) is not part of this repository: clone it and
point this script at its checkout. The script builds a run of an AuctionGym config with AuctionGym's own functions
(main.py's parse_config, instantiate_agents and instantiate_auction) and times only `Auction.simulate_opportunity()`
(one auction: participants drawn, each allocating an item and bidding, the price, the click), not the agents'
updates between iterations: an untimed warm-up of 1,000 auctions (it includes numba's compilation), then three
windows of at least --seconds each, the agents' logs cleared between windows as main.py clears them between
iterations (untimed). Last line: `auctiongym CONFIG: X auctions/s`.

    apt-get install python3-torch python3-numba python3-scipy python3-matplotlib python3-pandas python3-seaborn python3-tqdm
    git clone https://github.com/amzn/auction-gym /tmp/auction-gym
    /usr/bin/python3 benchmarks/auctiongym-peer/time_auctions.py /tmp/auction-gym config/SP_Oracle.json

(numpy 1.24 removed np.bool, which older versions of AuctionGym's src/Impression.py use; its later commits use bool.)
"""

import argparse
import os
import statistics
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkout", help="an AuctionGym checkout (the folder holding src/ and config/)")
    parser.add_argument("config", help="a config file, relative to the checkout or absolute (e.g. config/SP_Oracle.json)")
    parser.add_argument("--seconds", type=float, default=10.0, help="the least length of each timed window")
    a = parser.parse_args()
    src = os.path.join(a.checkout, "src")
    config = a.config if os.path.isabs(a.config) else os.path.join(a.checkout, a.config)
    if not os.path.isfile(os.path.join(src, "main.py")):
        parser.error(f"checkout: {src}/main.py not found (expected a clone of amzn/auction-gym)")
    if not os.path.isfile(config):
        parser.error(f"config: {config} not found")
    sys.path.insert(0, src)
    import numpy as np
    import torch
    import main as gym   # AuctionGym's main.py: its run is behind `if __name__ == '__main__'`

    rng, cfg, agent_configs, items, item_values, _, max_slots, emb, emb_var, obs_emb = gym.parse_config(config)
    agents = gym.instantiate_agents(rng, agent_configs, item_values, items)
    auction, *_ = gym.instantiate_auction(rng, cfg, items, item_values, agents, max_slots, emb, emb_var, obs_emb)
    print(f"AuctionGym {os.path.basename(config)}: {cfg['allocation']}, {len(agents)} agents "
          f"({', '.join(sorted({type(x.allocator).__name__ + ' + ' + type(x.bidder).__name__ for x in agents}))}), "
          f"{cfg['num_participants_per_round']} participants per auction, "
          f"{sorted({c['num_items'] for c in agent_configs})} items per agent, embedding {emb} (observed {obs_emb}); "
          f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)")

    def clear():
        for agent in auction.agents:
            agent.clear_utility()
            agent.clear_logs()
        auction.clear_revenue()

    for _ in range(1000):
        auction.simulate_opportunity()
    clear()
    start, calibration = time.perf_counter(), 2000
    for _ in range(calibration):
        auction.simulate_opportunity()
    count = max(10_000, int(a.seconds * calibration / (time.perf_counter() - start)))
    clear()
    rates = []
    for window in range(3):
        start = time.perf_counter()
        for _ in range(count):
            auction.simulate_opportunity()
        elapsed = time.perf_counter() - start
        rates.append(count / elapsed)
        print(f"  window {window + 1}: {count} auctions in {elapsed:.2f} s, {rates[-1]:.0f} auctions/s")
        clear()
    print(f"auctiongym {os.path.splitext(os.path.basename(config))[0]}: {statistics.median(rates):.0f} auctions/s")


if __name__ == "__main__":
    main()
