#!/usr/bin/env python3
"""Deterministic synthetic generator of live-stream impressions shaped like KuaiLive click logs.

Used by ``tools/train_default_models.py`` (which regenerates the default bundle with
``.venv/bin/python tools/train_default_models.py`` from the repository root). It can also
be run on its own to dump a CSV (gzip when the name ends in .gz):

    .venv/bin/python tools/gen_gift_data.py --rows 1000000 --seed 20260109 --out impressions.csv.gz

The same (rows, seed) always gives the same data (one numpy Generator, fixed draw order).

Columns (one row per impression = a user shown a live streamer; rows sorted by ``timestamp``).
Everything is numeric; categorical features are integer codes, never strings:

    user_id, streamer_id        entity ids (not model features)
    timestamp                   unix seconds, 30 days from 2025-05-05 (only for the time split)
    session_id                  one user's impressions on one calendar day (UTC): what one
                                ranking request would have ranked together, the group column
                                of ``giftrank eval --group session_id``; numbered 0, 1, ... in
                                order of each session's first impression. Derived from user_id
                                and timestamp, it draws no random numbers, so every other
                                column is what it was before it was added (not a model feature)
    user_level                  1..60, grows with the user's latent wealth
    user_account_age_days       1..3650
    user_gift_count_30d         gifts the user sent in the last 30 days
    user_gift_amount_30d        total coins of those gifts
    user_device                 integer code 0..5 (0 low-end Android .. 4 recent iPhone; 5 tablet/other)
    user_province               categorical code 0..33; NaN for ~2% of users (unknown IP location)
    streamer_fans               follower count (log-normal, heavy tail)
    streamer_live_minutes_7d    minutes live in the last 7 days
    streamer_category           categorical code 0..11 (game, talent, chat, shopping, ...)
    streamer_gift_rate_7d       observed gifts per impression in the last 7 days; NaN for new
                                streamers (8% of streamers, ~1% of impressions: they are small)
    streamer_gift_amount_7d     coins received in the last 7 days
    follows                     0/1, the user follows the streamer
    watch_minutes_30d           minutes this user watched this streamer in 30 days; NaN for ~9%
                                of impressions (lost logs; 11% when not following, 4% when following)
    past_gifts_to_streamer      gifts this user sent to this streamer before
    hour                        0..23 local hour (evening peak 19-23)
    weekday                     0..6, 0 = Monday
    gift_amount                 label: coins gifted in this impression, 0 = no gift

Generative model
----------------
Users (rows/30 of them) have an activity weight (log-normal: how many impressions they get),
a gift *propensity* zp and a *wealth* zw (standard normal, corr 0.1). Users with zw > 2.4
(~0.8%) are "big spenders" (whales). Observed user features are noisy views of the latents:
  user_gift_count_30d ~ Poisson(8 for whales, else exp(-1.2 + 1.5 zp));
  user_gift_amount_30d = count x per-gift amount exp(1.2 + 1.5 zw + noise);
  user_level = 14 + 9 zw + 3 log(activity) + N(0, 6), clipped to 1..60;
  user_device = tier of zw + N(0, 0.8) (6% code 5); each province has a wealth offset N(0, .25).
Streamers (rows/250) have a gift *conversion* zs and a *whale-ness* zh (corr 0.2) and a
category; fans, live minutes, an observed 7-day gift rate (~ conversion) and 7-day gift
coins (~ conversion x traffic x exp(1.3 zh)) are noisy views of them.
Impressions: user drawn by activity, streamer by (fans + 10)^0.6; a per-pair affinity
a ~ N(0, 1) + 0.2 zp drives follows ~ Bernoulli(sigmoid(-1.6 + 1.3 a)), watch minutes
(log-normal in a and follows) and past_gifts_to_streamer ~ Poisson(exp(-3 + a + 0.9 follows)
x (1 + user_gift_count_30d)).

Whether a gift happens - loyalty and habit, what Direct (all impressions) mostly learns:
    common  = 0.5 zs + hour effect (+0.5 at 19-23h, -0.4 at 2-7h) + 0.15 weekend + category
    others: logit P = b0 + 2.0 follows + 0.3 log1p(true watch) + 2.5 log1p(past_gifts_to_streamer)
                      + 0.3 a + 0.5 log1p(user_gift_count_30d) + 0.9 zp + common
    whales: logit P = -0.7 + 0.1 common            (P ~ 0.33 on any impression)
    b0 (about -10) is set by bisection so that 2% of impressions carry a gift. Loyal
    habitual gifters reach P ~ 0.99; the true watch time counts even where it is reported NaN.
How much - wealth, what Stage2 (gift impressions only) mostly learns:
    mu = 1.1 zw + 0.6 zh + device effect + province offset + category effect + 0.015 (level - 14)
    a "big" gift with probability q = sigmoid(0.5 + 0.6 zh) for whales, else
    sigmoid(-4.5 + 0.5 zw + 0.6 zh): coins = round(exp(N(5 + 0.9 mu, 0.5))), capped at 200,000;
    otherwise a small gift: coins = max(1, round(exp(N(0.4 + 0.4 mu + log1p(past_gifts), 0.5)))).
So most gifts are small (median ~10 coins; loyal fans give tens), ~9% are hundreds to tens of
thousands of coins, ~90% of those from whales. Direct, fit on log1p(amount) over all impressions,
ranks near-certain loyal gifts first (high Top-1% capture, weak NDCG@100); Stage2 ranks the
whales first (catches the largest gifts: higher NDCG@100, lower Top-1% capture). This mimics
the seed experiment's finding that the two models learn different signals.
Continuous features are rounded (minutes to 0.1, rates to 5 significant digits, counts and
coins to integers) so the CSV round-trips exactly.
"""

from __future__ import annotations

import argparse
import gzip
import math

import numpy as np
import pandas as pd

USER_FEATURES = [
    "user_level",
    "user_account_age_days",
    "user_gift_count_30d",
    "user_gift_amount_30d",
    "user_device",
    "user_province",
]
STREAMER_FEATURES = [
    "streamer_fans",
    "streamer_live_minutes_7d",
    "streamer_category",
    "streamer_gift_rate_7d",
    "streamer_gift_amount_7d",
]
PAIR_FEATURES = ["follows", "watch_minutes_30d", "past_gifts_to_streamer"]
CONTEXT_FEATURES = ["hour", "weekday"]
FEATURES = USER_FEATURES + STREAMER_FEATURES + PAIR_FEATURES + CONTEXT_FEATURES
CATEGORICAL_FEATURES = ["user_province", "streamer_category"]
LABEL = "gift_amount"

N_PROVINCES = 34
N_CATEGORIES = 12
N_DEVICES = 6
START_EPOCH = 1746403200  # 2025-05-05 00:00:00 UTC, a Monday
DAYS = 30
TARGET_GIFT_RATE = 0.02
WHALE_Z = 2.4  # users with wealth latent above this are big spenders
WHALE_LOGIT = -0.7  # whales' gift logit (absolute, not shifted by the calibrated intercept)
WHALE_COMMON = 0.1  # how much streamer/hour/weekday effects move whales' gift logit


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _round_sig(x, digits):
    """Round to `digits` significant digits (NaN stays NaN)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.full_like(x, np.nan)
    ok = np.isfinite(x) & (x != 0)
    mag = np.floor(np.log10(np.abs(x[ok])))
    scale = 10.0 ** (digits - 1 - mag)
    out[ok] = np.round(x[ok] * scale) / scale
    out[np.isfinite(x) & (x == 0)] = 0.0
    return out


def generate(n_rows: int = 1_000_000, seed: int = 20260109, with_latents: bool = False) -> pd.DataFrame:
    """Return `n_rows` impressions sorted by timestamp (see module docstring).

    with_latents=True adds diagnostic columns _whale, _p_gift, _zw, _zp (never model features).
    """
    rng = np.random.default_rng(seed)
    n_users = max(100, n_rows // 30)
    n_streamers = max(50, n_rows // 250)

    # ---------------- users ----------------
    zp = rng.standard_normal(n_users)
    zw = 0.1 * zp + math.sqrt(1 - 0.1**2) * rng.standard_normal(n_users)
    activity = rng.lognormal(0.0, 1.0, n_users)
    u_gift_count = rng.poisson(np.where(zw > WHALE_Z, 8.0, np.exp(-1.2 + 1.5 * zp)))
    # sum of per-gift amounts: draw per-user mean, then approximate the sum of `count`
    # log-normals by count * lognormal with shrinking noise (exact enough and vectorised)
    per_gift = np.exp(1.2 + 1.5 * zw + rng.standard_normal(n_users) / np.sqrt(np.maximum(u_gift_count, 1)))
    u_gift_amount = np.where(u_gift_count > 0, np.round(u_gift_count * np.maximum(per_gift, 1.0)), 0.0)
    u_level = np.clip(np.round(14 + 9 * zw + 3 * np.log(activity) + rng.normal(0, 6, n_users)), 1, 60)
    u_age = np.clip(np.round(rng.exponential(700, n_users)) + 1, 1, 3650)
    tier = zw + rng.normal(0, 0.8, n_users)
    u_device = np.digitize(tier, [-1.0, -0.2, 0.5, 1.2]).astype(np.float64)  # 0..4
    u_device[rng.random(n_users) < 0.06] = 5.0  # tablet / other
    prov_w = rng.dirichlet(np.full(N_PROVINCES, 0.8))
    u_province = rng.choice(N_PROVINCES, n_users, p=prov_w).astype(np.float64)
    prov_eff = rng.normal(0, 0.25, N_PROVINCES)
    u_prov_eff = prov_eff[u_province.astype(int)]
    u_province[rng.random(n_users) < 0.02] = np.nan
    device_eff = np.array([-0.5, -0.25, 0.0, 0.3, 0.6, 0.1])

    # ---------------- streamers ----------------
    zs = rng.standard_normal(n_streamers)
    zh = 0.2 * zs + math.sqrt(1 - 0.2**2) * rng.standard_normal(n_streamers)
    s_cat = rng.choice(N_CATEGORIES, n_streamers, p=rng.dirichlet(np.full(N_CATEGORIES, 2.0)))
    cat_p = rng.normal(0, 0.35, N_CATEGORIES)
    cat_a = rng.normal(0, 0.3, N_CATEGORIES)
    s_new = rng.random(n_streamers) < 0.08
    s_fans = np.round(np.exp(rng.normal(7.0, 1.8, n_streamers)))
    s_fans[s_new] = np.round(np.exp(rng.normal(3.5, 1.2, s_new.sum())))
    s_minutes = np.round(rng.gamma(2.0, 600.0, n_streamers), 1)
    s_minutes[s_new] = np.round(rng.uniform(0, 240, s_new.sum()), 1)
    true_rate = _sigmoid(-4.2 + 0.8 * zs + cat_p[s_cat])
    s_rate = _round_sig(true_rate * rng.lognormal(0, 0.3, n_streamers), 5)
    s_rate[s_new] = np.nan
    traffic = s_minutes * (1 + s_fans / 2000.0)
    s_amount = np.round(true_rate * traffic * np.exp(1.5 + 1.3 * zh + rng.normal(0, 0.5, n_streamers)))
    s_amount[s_new] = np.round(s_amount[s_new] * 0.05)
    s_weight = np.power(s_fans + 10.0, 0.6)
    s_weight /= s_weight.sum()

    # ---------------- impressions ----------------
    uid = rng.choice(n_users, n_rows, p=activity / activity.sum())
    sid = rng.choice(n_streamers, n_rows, p=s_weight)
    aff = rng.standard_normal(n_rows) + 0.2 * zp[uid]
    follows = (rng.random(n_rows) < _sigmoid(-1.6 + 1.3 * aff)).astype(np.float64)
    watch = np.round(np.exp(1.0 + 1.1 * aff + 0.8 * follows + rng.normal(0, 0.9, n_rows)) - 1.0, 1)
    watch = np.maximum(watch, 0.0)
    watch_obs = watch.copy()
    watch_obs[rng.random(n_rows) < np.where(follows > 0, 0.04, 0.11)] = np.nan
    past_gifts = rng.poisson(np.exp(-3.0 + 1.0 * aff + 0.9 * follows) * (1 + u_gift_count[uid]))

    hour_w = np.array([3, 2, 1.2, 0.8, 0.6, 0.6, 1, 1.5, 2, 2.5, 3, 3.5,
                       4, 3.8, 3.5, 3.5, 3.8, 4.2, 5, 6.5, 8, 9, 8, 5.5])
    hour = rng.choice(24, n_rows, p=hour_w / hour_w.sum())
    day = rng.integers(0, DAYS, n_rows)
    ts = START_EPOCH + day * 86400 + hour * 3600 + rng.integers(0, 3600, n_rows)
    weekday = day % 7  # START_EPOCH is a Monday
    hour_eff = np.where((hour >= 19) & (hour <= 23), 0.5, np.where((hour >= 2) & (hour <= 7), -0.4, 0.0))

    loyalty = 2.0 * follows + 0.3 * np.log1p(watch) + 2.5 * np.log1p(past_gifts) + 0.3 * aff
    habit = loyalty + 0.5 * np.log1p(u_gift_count[uid]) + 0.9 * zp[uid]
    whale = zw[uid] > WHALE_Z
    common = 0.5 * zs[sid] + hour_eff + 0.15 * (weekday >= 5) + cat_p[s_cat[sid]]
    p_whale = _sigmoid(WHALE_LOGIT + WHALE_COMMON * common)
    # calibrate the intercept of the other users so the expected gift rate is TARGET_GIFT_RATE
    lo, hi = -20.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.where(whale, p_whale, _sigmoid(mid + habit + common)).mean() > TARGET_GIFT_RATE:
            hi = mid
        else:
            lo = mid
    p_gift = np.where(whale, p_whale, _sigmoid((lo + hi) / 2 + habit + common))
    gift = rng.random(n_rows) < p_gift

    mu = (1.1 * zw[uid] + 0.6 * zh[sid] + device_eff[u_device[uid].astype(int)] + u_prov_eff[uid]
          + cat_a[s_cat[sid]] + 0.015 * (u_level[uid] - 14))
    q = np.where(whale, _sigmoid(0.5 + 0.6 * zh[sid]), _sigmoid(-4.5 + 0.5 * zw[uid] + 0.6 * zh[sid]))
    big = rng.random(n_rows) < q
    big_amt = np.minimum(np.round(np.exp(rng.normal(5.0 + 0.9 * mu, 0.5))), 200_000.0)
    small_amt = np.maximum(np.round(np.exp(rng.normal(0.4 + 0.4 * mu + 1.0 * np.log1p(past_gifts), 0.5))), 1.0)
    amount = np.where(gift, np.where(big, big_amt, small_amt), 0.0)

    df = pd.DataFrame({
        "user_id": uid,
        "streamer_id": sid,
        "timestamp": ts,
        "user_level": u_level[uid],
        "user_account_age_days": u_age[uid],
        "user_gift_count_30d": u_gift_count[uid].astype(np.float64),
        "user_gift_amount_30d": u_gift_amount[uid],
        "user_device": u_device[uid],
        "user_province": u_province[uid],
        "streamer_fans": s_fans[sid],
        "streamer_live_minutes_7d": s_minutes[sid],
        "streamer_category": s_cat[sid].astype(np.float64),
        "streamer_gift_rate_7d": s_rate[sid],
        "streamer_gift_amount_7d": s_amount[sid],
        "follows": follows,
        "watch_minutes_30d": watch_obs,
        "past_gifts_to_streamer": past_gifts.astype(np.float64),
        "hour": hour.astype(np.float64),
        "weekday": weekday.astype(np.float64),
        LABEL: amount,
    })
    if with_latents:
        df["_whale"], df["_p_gift"], df["_zw"], df["_zp"] = whale, p_gift, zw[uid], zp[uid]
    df = df.sort_values("timestamp", kind="stable").reset_index(drop=True)
    day = (df["timestamp"].to_numpy() - START_EPOCH) // 86400
    session_key = df["user_id"].to_numpy().astype(np.int64) * DAYS + day
    df.insert(3, "session_id", pd.factorize(session_key)[0].astype(np.int64))
    return df


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=20260109)
    ap.add_argument("--out", required=True, help="CSV path (.gz for gzip)")
    args = ap.parse_args()
    df = generate(args.rows, args.seed)
    if args.out.endswith(".gz"):
        with open(args.out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
            df.to_csv(f, index=False, na_rep="nan")
    else:
        df.to_csv(args.out, index=False, na_rep="nan")
    print(f"wrote {len(df)} rows, gift rate {np.mean(df[LABEL] > 0):.4f}")


if __name__ == "__main__":
    main()
