"""
Generates the sample data of the example workflows, deterministically (fixed seed).

The data set imitates the vendor's tutorial: will a customer of a subscription service buy
the premium plan? Each row is a customer with dates, numbers and categories; the target
``purchased_premium`` (``yes``/``no``) follows a known logistic rule plus noise, so a model
has something real to learn, and the "new month" set drifts (a mobile app launch and a price change alter who buys), so
a retrained model has something to catch up with.

Files (run ``python example_dags/data/generate.py`` to rewrite them; a test checks that
the committed files are exactly what this script produces):

* ``train.csv``           — 2,000 customers, Jan-Jun 2026, for the first training
* ``eval.csv``            — 500 customers of the same period, evaluation data
* ``new_month.csv``       — 1,500 customers of July 2026, for retraining
* ``new_month_eval.csv``  — 500 customers of July 2026, evaluation data for retraining
* ``score.csv``           — 500 customers to score (no target column)

The forecasting example (``predone_forecast``) has monthly sales of three stores: ``sales``
follows each store's level, a trend, planned promotions and the month's holidays, plus noise;
``visitors`` is counted as the month happens (not known ahead). From January 2026 the Umeda
store, renovated, sells more: a model trained before cannot know it.

* ``sales_history.csv``         — 3 stores x 36 months, 2023-01 to 2025-12, for the first training
* ``sales_2026q1_to_score.csv`` — the 9 store-months of 2026-01 to 2026-03 to forecast (``month``,
  ``store`` and the columns known ahead; no ``sales``, no ``visitors``)
* ``sales_history_2026q1.csv``  — the history up to 2026-03, for retraining
* ``sales_2026q1_actuals.csv``  — what 2026-01 to 2026-03 really sold, evaluation data of the retraining
* ``sales_2026q2_to_score.csv`` — 2026-04 to 2026-06 to forecast with the retrained model

The recommendations example (``aitems_recommendations``) has a small shop in the three files
AiTEMS learns from, with the required columns first, in its case (``USER_ID``, ``ITEM_ID``,
``TIMESTAMP``): each user mostly views items of one or two favourite categories, which depend on
age, so personalised and related-item recommendations have something to learn.

* ``aitems_users.csv``        — 300 users: ``USER_ID``, ``AGE``, ``GENDER``
* ``aitems_items.csv``        — 120 items: ``ITEM_ID``, ``CATEGORY``, ``PRICE``
* ``aitems_interactions.csv`` — 3,000 views in November 2026: ``USER_ID``, ``ITEM_ID``, ``TIMESTAMP``
  (seconds since the epoch), in time order
* ``aitems_target_users.csv`` — 20 USER_IDs to fetch personalised recommendations for
* ``aitems_target_items.csv`` — 10 ITEM_IDs to fetch related items for
"""

from __future__ import annotations

import csv
import math
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = [
    "customer_id",
    "signup_date",
    "age",
    "gender",
    "region",
    "device",
    "plan",
    "monthly_visits",
    "avg_session_minutes",
    "support_tickets",
    "last_purchase_amount",
    "purchased_premium",
]
REGIONS = ["Kanto", "Kansai", "Chubu", "Kyushu", "Hokkaido", "Tohoku"]
PLANS = ["free", "basic", "standard"]


def customer(rng: random.Random, number: int, start: date, days: int, drift: float) -> dict[str, str]:
    age = max(18, min(80, int(rng.gauss(38, 12))))
    device = rng.choices(["mobile", "desktop", "tablet"], weights=[0.5 + drift, 0.4 - drift / 2, 0.1])[0]
    plan = rng.choices(PLANS, weights=[0.45, 0.35, 0.20])[0]
    visits = max(0, int(rng.gauss(12 + 6 * drift, 6)))
    minutes = round(max(0.5, rng.gauss(9.0, 4.0)), 1)
    tickets = min(9, int(rng.expovariate(1.5)))
    amount = round(max(0.0, rng.gauss(2400, 1500)), 0) if rng.random() > 0.15 else 0.0
    signup = start + timedelta(days=rng.randrange(days))
    score = (
        -3.2
        + 0.11 * visits
        + 0.08 * minutes
        + 0.0003 * amount
        + {"free": -0.6, "basic": 0.2, "standard": 0.9}[plan]
        + (0.4 if device == "desktop" else 0.0)
        - 0.25 * tickets
        + (0.3 if 30 <= age <= 50 else 0.0)
        # The new month: a mobile app launch makes mobile users buy, and a price change
        # puts off standard-plan users — a model trained before cannot know either.
        + drift * (12.0 if device == "mobile" else 0.0)
        - drift * (12.0 if plan == "standard" else 0.0)
    )
    purchased = rng.random() < 1 / (1 + math.exp(-score))
    row = {
        "customer_id": f"C{number:06d}",
        "signup_date": signup.isoformat(),
        "age": str(age),
        "gender": rng.choice(["female", "male", "other"]),
        "region": rng.choice(REGIONS),
        "device": device,
        "plan": plan,
        "monthly_visits": str(visits),
        "avg_session_minutes": f"{minutes:.1f}",
        "support_tickets": str(tickets),
        "last_purchase_amount": f"{amount:.0f}",
        "purchased_premium": "yes" if purchased else "no",
    }
    # A few missing values, as real exports have.
    if rng.random() < 0.03:
        row["avg_session_minutes"] = ""
    if rng.random() < 0.02:
        row["region"] = ""
    return row


def write(name: str, rows: list[dict[str, str]], with_target: bool = True) -> None:
    columns = COLUMNS if with_target else COLUMNS[:-1]
    with (HERE / name).open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


STORES = {"shibuya": 520.0, "umeda": 430.0, "sakae": 310.0}
#: National holidays per calendar month (Japan, roughly): known long before the month.
HOLIDAYS = [3, 1, 2, 2, 3, 0, 1, 1, 2, 2, 2, 0]
SALES_COLUMNS = ["month", "store", "promo", "holidays", "visitors", "sales"]


def store_months(rng: random.Random) -> list[dict[str, str]]:
    """Sales of every store for the 42 months 2023-01 to 2026-06, month by month."""
    rows = []
    for index in range(42):
        year, month = 2023 + index // 12, index % 12 + 1
        for store, level in STORES.items():
            promo = 1 if rng.random() < 0.3 else 0
            renovated = 90.0 if store == "umeda" and year >= 2026 else 0.0
            sales = level + 3.5 * index + 55.0 * promo + 12.0 * HOLIDAYS[month - 1] + renovated + rng.gauss(0, 12)
            rows.append(
                {
                    "month": f"{year}-{month:02d}",
                    "store": store,
                    "promo": str(promo),
                    "holidays": str(HOLIDAYS[month - 1]),
                    "visitors": str(round(sales * 2.6 + rng.gauss(0, 40))),
                    "sales": f"{sales:.1f}",
                }
            )
    return rows


def write_sales(name: str, rows: list[dict[str, str]], first: str, last: str, columns: list[str]) -> None:
    with (HERE / name).open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(row for row in rows if first <= row["month"] <= last)


CATEGORIES = ["books", "music", "games", "outdoor", "kitchen", "beauty"]
#: The favourite categories by age band (the first band a user is under): the young lean to games and music.
FAVOURITES = {20: ["games", "music"], 35: ["outdoor", "books"], 50: ["kitchen", "books"], 80: ["beauty", "kitchen"]}
NOVEMBER = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())


def shop(rng: random.Random) -> dict[str, list[dict[str, str]]]:
    """Users, items and their views for the AiTEMS example, each as rows of its file."""
    users = []
    for number in range(1, 301):
        age = max(16, min(79, int(rng.gauss(38, 13))))
        users.append({"USER_ID": f"U{number:04d}", "AGE": str(age), "GENDER": rng.choice(["F", "M"])})
    items = []
    for number in range(1, 121):
        category = CATEGORIES[(number - 1) % len(CATEGORIES)]
        items.append({"ITEM_ID": f"I{number:04d}", "CATEGORY": category, "PRICE": str(rng.randrange(5, 200) * 100)})
    by_category = {c: [i["ITEM_ID"] for i in items if i["CATEGORY"] == c] for c in CATEGORIES}
    views = []
    for user in users:
        favourites = next(f for limit, f in FAVOURITES.items() if int(user["AGE"]) < limit)
        for _ in range(10):
            category = rng.choice(favourites) if rng.random() < 0.8 else rng.choice(CATEGORIES)
            # A few items of each category are the hits: views follow a long tail, as in shops.
            item = by_category[category][min(int(rng.expovariate(0.35)), len(by_category[category]) - 1)]
            seconds = rng.randrange(30 * 24 * 3600)
            views.append({"USER_ID": user["USER_ID"], "ITEM_ID": item, "TIMESTAMP": str(NOVEMBER + seconds)})
    views.sort(key=lambda row: (int(row["TIMESTAMP"]), row["USER_ID"]))
    return {
        "aitems_users.csv": users,
        "aitems_items.csv": items,
        "aitems_interactions.csv": views,
        "aitems_target_users.csv": [{"USER_ID": u["USER_ID"]} for u in rng.sample(users, 20)],
        # Items someone viewed: a model knows nothing related to an item nobody viewed.
        "aitems_target_items.csv": [{"ITEM_ID": i} for i in rng.sample(sorted({v["ITEM_ID"] for v in views}), 10)],
    }


def write_rows(name: str, rows: list[dict[str, str]]) -> None:
    with (HERE / name).open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    rng = random.Random(20261123)
    first_half = date(2026, 1, 1)
    july = date(2026, 7, 1)
    number = iter(range(1, 1_000_000))
    write("train.csv", [customer(rng, next(number), first_half, 181, 0.0) for _ in range(2000)])
    write("eval.csv", [customer(rng, next(number), first_half, 181, 0.0) for _ in range(500)])
    write("new_month.csv", [customer(rng, next(number), july, 31, 0.2) for _ in range(1500)])
    write("new_month_eval.csv", [customer(rng, next(number), july, 31, 0.2) for _ in range(500)])
    write("score.csv", [customer(rng, next(number), july, 31, 0.2) for _ in range(500)], with_target=False)

    sales = store_months(random.Random(20261207))
    known = ["month", "store", "promo", "holidays"]  # what is known before the month happens
    write_sales("sales_history.csv", sales, "2023-01", "2025-12", SALES_COLUMNS)
    write_sales("sales_2026q1_to_score.csv", sales, "2026-01", "2026-03", known)
    write_sales("sales_history_2026q1.csv", sales, "2023-01", "2026-03", SALES_COLUMNS)
    write_sales("sales_2026q1_actuals.csv", sales, "2026-01", "2026-03", SALES_COLUMNS)
    write_sales("sales_2026q2_to_score.csv", sales, "2026-04", "2026-06", known)

    for name, rows in shop(random.Random(20261207)).items():
        write_rows(name, rows)


if __name__ == "__main__":
    main()
