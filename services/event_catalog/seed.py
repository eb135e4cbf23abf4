"""The catalog seeded on first start (only when the ``event`` table is empty).

Dates are relative to the day of seeding, so a fresh stack always shows upcoming events.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import sqlalchemy as sa

# (name, category, venue, city, days from now, local start hour:minute (UTC here), price, capacity,
#  tickets already sold, description)
SEED_EVENTS = [
    ("Aurora Skies World Tour", "concert", "Madison Square Garden", "New York", 12, "20:00", 129.00, 18000, 15890,
     "Synth-pop four-piece Aurora Skies bring their arena show, lasers and all, to the Garden."),
    ("The Midnight Orchestra: Film Scores Live", "classical", "Royal Albert Hall", "London", 18, "19:30", 74.50, 5200, 3120,
     "A 90-piece orchestra performs the great film scores of the last four decades under the famous dome."),
    ("Jazz at the Vanguard: Lina Osei Quartet", "jazz", "Village Vanguard", "New York", 5, "21:00", 45.00, 123, 111,
     "Two intimate sets from the Ghanaian-British saxophonist and her quartet."),
    ("Neon Harbor Festival - Day 1", "festival", "Golden Gate Park", "San Francisco", 40, "12:00", 189.00, 40000, 21000,
     "Three stages, forty artists and the best food trucks in the Bay on the festival's opening day."),
    ("Neon Harbor Festival - Day 2", "festival", "Golden Gate Park", "San Francisco", 41, "12:00", 189.00, 40000, 17450,
     "Day two closes with a headline set from electronic duo Parallel Lines."),
    ("Championship Final: Harbor City FC vs Northside United", "sports", "Wembley Stadium", "London", 30, "16:00", 95.00, 90000, 71200,
     "The cup final. Ninety thousand fans, one trophy."),
    ("Comedy Night with Priya Raman", "comedy", "The Comedy Store", "Los Angeles", 8, "20:30", 35.00, 450, 402,
     "Priya Raman's new hour, 'Overqualified', recorded live for her first special."),
    ("Swan Lake - The Royal Ballet", "theatre", "Royal Opera House", "London", 25, "19:00", 110.00, 2256, 1930,
     "Tchaikovsky's classic in the Royal Ballet's celebrated production."),
    ("Basin Street Blues Revue", "jazz", "Preservation Hall", "New Orleans", 9, "20:00", 40.00, 100, 100,
     "Traditional New Orleans jazz, the way it has been played in this room since 1961."),
    ("Tech Summit: Cloud Native Day", "conference", "Moscone Center", "San Francisco", 55, "09:00", 499.00, 6000, 2750,
     "Talks and workshops on Kubernetes operators, streaming data and platform engineering."),
    ("Desert Echoes Unplugged", "concert", "Red Rocks Amphitheatre", "Morrison", 33, "19:30", 85.00, 9525, 6100,
     "An acoustic evening under the rocks with the Desert Echoes and special guests."),
    ("Hamilton", "theatre", "Richard Rodgers Theatre", "New York", 14, "19:00", 159.00, 1319, 1201,
     "The musical about the ten-dollar founding father, eight shows a week."),
    ("Berlin Philharmonic: Mahler 5", "classical", "Philharmonie Berlin", "Berlin", 21, "20:00", 89.00, 2440, 1800,
     "Mahler's Fifth Symphony, with the famous Adagietto, conducted by the orchestra's chief conductor."),
    ("Electric Dreams Warehouse Party", "club", "Printworks", "London", 16, "22:00", 42.00, 5000, 3300,
     "Twelve hours of house and techno across two rooms."),
    ("Tokyo Lights: J-Pop Showcase", "concert", "Nippon Budokan", "Tokyo", 45, "18:00", 98.00, 14471, 9000,
     "Five of the year's breakout J-Pop acts share one legendary stage."),
    ("Marathon Expo & Fun Run", "sports", "Grant Park", "Chicago", 60, "07:00", 25.00, 12000, 4100,
     "A 5K fun run for all ages, with the marathon expo open all day."),
    ("Indie Film Premiere: 'Paper Boats'", "film", "TCL Chinese Theatre", "Los Angeles", 11, "19:00", 28.00, 932, 540,
     "Premiere screening followed by a Q&A with the director and cast."),
    ("Stand-Up Sundays: Open Mic Finals", "comedy", "Gotham Comedy Club", "New York", 3, "19:00", 20.00, 300, 288,
     "Eight finalists, one headline slot. The audience votes."),
]


def seed_rows(now: datetime | None = None) -> list[dict]:
    now = now or datetime.now(timezone.utc)
    today = now.date()
    rows = []
    for (name, category, venue, city, days, hhmm, price, capacity, sold, description) in SEED_EVENTS:
        hour, minute = (int(p) for p in hhmm.split(":"))
        when = datetime.combine(today + timedelta(days=days), time(hour, minute), tzinfo=timezone.utc)
        rows.append({
            "name": name, "category": category, "venue": venue, "city": city, "date": when,
            "price": round(price, 2), "currency": "USD", "capacity": capacity,
            "tickets_available": capacity - sold, "description": description,
        })
    return rows


def seed_if_empty(conn: sa.Connection) -> int:
    """Insert the seed catalog when the table is empty; returns how many rows it inserted."""
    if conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM event)")).scalar():
        return 0
    rows = seed_rows()
    conn.execute(sa.text(
        "INSERT INTO event (name, category, venue, city, date, price, currency, capacity, tickets_available, description) "
        "VALUES (:name, :category, :venue, :city, :date, :price, :currency, :capacity, :tickets_available, :description)"),
        rows)
    return len(rows)
