"""Write the example exports of a small fictional operator (6 four-car EMUs, 60 days), as its systems would.

Run once to (re)write the files beside this script; they are committed, and the mappings in ``mappings/``
turn them into railpm's feeds. Each file carries a little of the dirt real exports carry (a vehicle not in
the register, a local time that does not exist on the spring clock change, a code nobody catalogued, a
reading out of range, a priority nobody mapped), so onboarding and the gate have something to account for.

    python examples/own_fleet/make_exports.py
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

HERE = Path(__file__).resolve().parent
START = datetime(2025, 2, 15, tzinfo=ZoneInfo("UTC"))
DAYS = 60
BERLIN = ZoneInfo("Europe/Berlin")
UNITS = [f"{n:03d}" for n in range(1, 7)]
DEPOT_OF = {"001": "Eidelstedt", "002": "Eidelstedt", "003": "Eidelstedt", "004": "Kiel", "005": "Kiel", "006": "Kiel"}

TCMS_CODES = {  # code: (severity, text, component)
    "1201": ("WARNING", "Traction converter temperature high", "TCONV"),
    "1290": ("CRITICAL", "Traction converter tripped", "TCONV"),
    "2101": ("WARNING", "Pantograph contact force out of band", "PANTO"),
    "3101": ("WARNING", "Door slow to close", "DOOR"),
    "3190": ("MAJOR", "Door isolated", "DOOR"),
    "4101": ("WARNING", "HVAC supply air deviation", "HVAC"),
    "5101": ("WARNING", "Brake release slow", "BRAKE"),
    "0001": ("INFO", "Cab activated", None),
}


def write(path: Path, header: list[str], rows: list[list], delimiter: str = ",", title: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        if title:
            handle.write(title + "\n")
        out = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        out.writerow(header)
        out.writerows(rows)


def register() -> None:
    rows = [[f"ET 490 {u}", "490", DEPOT_OF[u], f"{(3 + int(u)) % 28 + 1:02d}.0{int(u) % 9 + 1}.2019", f"{280 + 10 * int(u)}", "active"]
            for u in UNITS]
    rows.append(["ET 490 099", "490", "Kiel", "01.06.2010", "0", "withdrawn"])
    write(HERE / "register" / "fleet_register.csv", ["Fleet No.", "Class", "Home depot", "In service since",
          "Planned mileage per day (mi)", "Status"], rows, delimiter=";", title="Fleet register;as of 14.02.2025;;;;")


def tcms(rng: np.random.Generator) -> None:
    rows = []
    codes = [c for c in TCMS_CODES if c != "1290"]
    for day in range(DAYS):
        for unit in UNITS:
            for _ in range(rng.poisson(1.2)):
                code = str(rng.choice(codes))
                moment = START + timedelta(days=day, seconds=int(rng.integers(5 * 3600, 23 * 3600)))
                local = moment.astimezone(BERLIN)
                severity, text, _ = TCMS_CODES[code]
                rows.append([f"490{unit}", int(rng.integers(1, 5)), local.isoformat(timespec="seconds"), code, severity, text])
    # the converter trips that the SAP orders below repair
    for unit, day in (("002", 20), ("005", 41)):
        moment = (START + timedelta(days=day, hours=7, minutes=12)).astimezone(BERLIN)
        rows.append([f"490{unit}", 2, moment.isoformat(timespec="seconds"), "1290", "CRITICAL", "Traction converter tripped"])
    rows.append(["490009", 1, (START + timedelta(days=3, hours=9)).astimezone(BERLIN).isoformat(timespec="seconds"), "3101",
                 "WARNING", "Door slow to close"])  # a unit not in the register
    rows.append(["490003", 3, (START + timedelta(days=33, hours=14)).astimezone(BERLIN).isoformat(timespec="seconds"), "7777",
                 "MAJOR", "Passenger alarm handle pulled"])  # a code nobody catalogued
    rows.sort(key=lambda r: r[2])
    write(HERE / "tcms" / "event_log_2025Q1.csv", ["vehicle", "car", "timestamp", "event_code", "severity", "text"], rows)


def sap_pm(rng: np.random.Generator) -> None:
    header = ["Notification", "Notif. type", "Functional loc.", "Equipment", "Object part", "Priority", "Malf. start date",
              "Malf. start time", "Malf. end date", "Malf. end time", "Damage code", "Cause code", "Order", "Order type",
              "Maint. plan", "Counter reading (mi)", "Description"]
    rows = []
    number = 10004500

    def local(moment: datetime) -> tuple[str, str]:
        moment = moment.astimezone(BERLIN)
        return moment.strftime("%d.%m.%Y"), moment.strftime("%H:%M:%S")

    def add(kind, unit, part, priority, opened, closed, damage, cause, order_type, plan, text, order=True):
        nonlocal number
        number += 1
        miles = 310_000 + 190 * int(unit) * 10 + (opened - START).days * 180
        start_date, start_time = local(opened)
        end_date, end_time = local(closed) if closed else ("", "")
        rows.append([number, kind, f"NB-ET490-{unit}-{part or 'VEH'}", f"E{int(unit):02d}{part or 'VEH'}", part or "", priority,
                     start_date, start_time, end_date, end_time, damage, cause, (number + 4_000_000) if order else "",
                     order_type if order else "", plan, f"{miles:,.1f}".replace(",", "X").replace(".", ",").replace("X", "."), text])

    for unit, day in (("002", 20), ("005", 41)):  # converter failures: malfunction report, order, replacement
        opened = START + timedelta(days=day, hours=7, minutes=40)
        add("M2", unit, "TCONV", 1, opened, opened + timedelta(hours=30), "D-TC01", "C-WEAR", "PM01", "", "Converter tripped, replaced")
    for unit, day, part, damage, priority in (("001", 12, "DOOR", "D-DR01", 2), ("004", 27, "HVAC", "D-HV01", 3),
                                               ("006", 50, "BRAKE", "D-BR01", 2)):
        opened = START + timedelta(days=day, hours=10)
        add("M2", unit, part, priority, opened, opened + timedelta(hours=5), damage, "C-WEAR", "PM01", "", "Replaced on site")
    for unit, day in (("003", 35),):  # a planned replacement
        opened = START + timedelta(days=day, hours=8)
        add("M3", unit, "PANTO", 4, opened, opened + timedelta(hours=3), "", "", "PM02", "", "Pantograph carbon strips renewed")
    for unit in UNITS:  # level 2 inspections every 14 days, level 3 once
        for day in range(int(unit) % 7, DAYS, 14):
            opened = START + timedelta(days=day, hours=22)
            add("M3", unit, "", 4, opened, opened + timedelta(hours=4), "", "", "PM03", "L2", "Routine inspection")
        opened = START + timedelta(days=30 + int(unit), hours=21)
        add("M3", unit, "", 4, opened, opened + timedelta(hours=9), "", "", "PM03", "L3", "Periodic inspection")
    add("M1", "004", "HVAC", 4, START + timedelta(days=5, hours=9), None, "", "", "", "", "Passenger reports cold saloon", order=False)
    add("M2", "001", "DOOR", 9, START + timedelta(days=8, hours=9), START + timedelta(days=8, hours=11), "D-DR01", "C-MISUSE",
        "PM01", "", "Door forced open")  # a priority the mapping has no grade for
    spring = datetime(2025, 3, 30, 2, 30, tzinfo=BERLIN)  # 02:30 does not exist in Berlin that night
    rows.append([number + 1, "M2", "NB-ET490-006-DOOR", "E06DOOR", "DOOR", 2, "30.03.2025", "02:30:00", "30.03.2025",
                 "04:10:00", "D-DR01", "C-WEAR", number + 4_000_001, "PM01", "", "1.234,5", f"Door fault at {spring:%H:%M} (clock change)"])
    write(HERE / "sap_pm" / "IW69_notifications.csv", header, rows, delimiter=";")


def condition_monitoring(rng: np.random.Generator) -> None:
    rows = []
    for unit in UNITS:
        miles = 300_000.0 + 10_000 * int(unit)
        wear = 0.0
        for step in range(DAYS * 4):
            moment = START + timedelta(hours=6 * step)
            speed = float(rng.uniform(20, 60))
            miles += speed * 6 * 0.5
            failing = unit in ("002", "005") and (20 if unit == "002" else 41) - 6 <= step / 4 < (20 if unit == "002" else 41)
            wear = wear + 0.6 if failing else 0.0
            converter_f = 140 + 25 * rng.standard_normal() * 0.3 + wear
            rows.append([f"ET490-{unit}", moment.strftime("%Y-%m-%d %H:%M"), f"{miles:.1f}", f"{speed:.1f}",
                         f"{rng.uniform(20, 90):.1f}", f"{rng.normal(41, 9):.1f}", f"{converter_f:.1f}",
                         f"{rng.normal(55, 4):.2f}", f"{rng.normal(3.2, 0.3):.2f}"])
    rows[97][6] = "401.0"  # a converter reading far beyond the sensor's range
    write(HERE / "condition_monitoring" / "cm_readings.csv",
          ["Fleet number", "Reading time (UTC)", "Odometer (mi)", "Speed (mph)", "Load (%)", "Outside temp (F)",
           "Converter temp (F)", "Brake cyl. pressure (psi)", "Door close time (s)"], rows)


if __name__ == "__main__":
    generator = np.random.default_rng(2025)
    register()
    tcms(generator)
    sap_pm(generator)
    condition_monitoring(generator)
