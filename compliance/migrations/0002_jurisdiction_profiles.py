"""The three jurisdiction profiles of DESIGN.md section 6 and COMPLIANCE.md, each rule citing its source.

CN is the default for Chinese borrowers; US and UK beside it. Numbers a regime leaves to policy are
set here to the lender's policy and say so in the citation.
"""

from datetime import time

from django.db import migrations

CN = "GB/T 45251-2025; NIFA 2024 collection guideline; CBA 2026 consumer-loan collection guideline"
REG_F = "Reg F 12 CFR"
CONC = "FCA CONC 7"

PROFILES = {
    "cn": ("China", "CN", [
        ("quiet_hours", None, time(22, 0), time(8, 0), "", f"No collection 22:00-08:00 ({CN})"),
        ("daily_connected_cap", 3, None, None, "", f"At most 3 answered calls a day per borrower, all agencies ({CN})"),
        ("daily_attempt_cap", 6, None, None, "", f"At most 6 unanswered attempts a day per contact method ({CN})"),
        ("third_party", 3, None, None, "unreachable_only",
         f"Contacts only when the borrower is unreachable (invalid number or 3 failed attempts), deceased or "
         f"lacks capacity; never told of the debt ({CN}; NIFA 2018 convention)"),
        ("field_visit", 2, None, None, "", "Two staff and a full recording at every visit (CBA 2026)"),
        ("cease_communication", None, None, None, "", f"Lender policy: a cease request is honoured ({CN})"),
        ("time_barred", None, None, None, "", "PRC Civil Code art. 188: 3-year limitation; no legal threat after it"),
    ]),
    "us": ("United States", "US", [
        ("quiet_hours", None, time(21, 0), time(8, 0), "", f"Before 08:00 or after 21:00 local ({REG_F} 1006.6(b)(1))"),
        ("seven_in_seven", 7, None, None, "", f"More than 7 calls in 7 consecutive days ({REG_F} 1006.14(b)(2)(i))"),
        ("post_conversation_cooldown", 7, None, None, "",
         f"No call within 7 days after a conversation, that day counting as day 1 ({REG_F} 1006.14(b)(2)(ii))"),
        ("third_party", None, None, None, "permitted_roles",
         f"Location calls only, no debt; the debt only with spouse, guardian, executor, attorney "
         f"({REG_F} 1006.6(d)(1), FDCPA 804)"),
        ("cease_communication", None, None, None, "",
         f"After a cease request only the three permitted notices ({REG_F} 1006.6(c))"),
        ("time_barred", None, None, None, "", f"No suit or threat of suit on time-barred debt ({REG_F} 1006.26(b))"),
    ]),
    "uk": ("United Kingdom", "GB,UK", [
        ("quiet_hours", None, time(21, 0), time(8, 0), "",
         f"Unreasonable times: lender policy 21:00-08:00 ({CONC}.9.4; CONC 7.3)"),
        ("daily_connected_cap", 3, None, None, "", f"Lender policy against excessive contact ({CONC}.6.3)"),
        ("third_party", None, None, None, "location_only", f"Third parties never learn of the debt ({CONC}.5)"),
        ("field_visit", 1, None, None, "", f"No visits to a particularly vulnerable customer ({CONC}.2, FG21/1)"),
        ("cease_communication", None, None, None, "", f"Lender policy ({CONC}.9)"),
        ("time_barred", None, None, None, "", f"Limitation: 6 years England, Wales, NI; 5 Scotland ({CONC}.15)"),
    ]),
}  # fmt: skip


def forwards(apps, schema_editor):
    Profile = apps.get_model("compliance", "JurisdictionProfile")
    Rule = apps.get_model("compliance", "ContactRule")
    for code, (name, regions, rules) in PROFILES.items():
        profile, _ = Profile.objects.get_or_create(code=code, defaults={"name": name, "regions": regions})
        for rule, limit, start, end, mode, citation in rules:
            Rule.objects.get_or_create(
                profile=profile,
                rule=rule,
                defaults={"limit": limit, "start": start, "end": end, "mode": mode, "citation": citation},
            )


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
