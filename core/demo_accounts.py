"""Demo accounts (plain data, importable without Django set up). DEBUG-only, see seed_demo."""

DEMO_PASSWORD = "demo-blend-2026"  # noqa: S105 - demo only; seed_demo refuses without DEBUG

SITES = [("umcu", "UMC Utrecht"), ("partner", "Partner hospital (demo)")]

# username, first name, last name, role, site code (None = all sites), Django admin access
USERS = [
    ("nurse", "Noor", "Verpleegkundige", "nurse", "umcu", False),
    ("nurse2", "Pieter", "Partner", "nurse", "partner", False),
    ("investigator", "Iris", "Onderzoeker", "investigator", "umcu", False),
    ("monitor", "Maarten", "Monitor", "data_manager", None, False),
    ("statistician", "Sanne", "Statisticus", "statistician", None, False),
    ("admin", "Anna", "Beheerder", "administrator", None, True),
]
