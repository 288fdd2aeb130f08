"""Where the customer may be: the countries and subdivisions whose laws may apply.

A rule scoped to `regions: [US-FL]` applies when *any* candidate location of the customer
is in Florida: a state law protects whoever may be there, so an unknown location counts
against the sender. Candidates come from the profile (`country`, `subdivision`) and from
every phone number (its region, and for North American numbers the state or province the
number is geocoded to). Codes are ISO 3166: `US`, `US-FL`, `CA-ON`, `FR`, `AU`.

What is not known counts as possible: a customer of whom nothing is known may be anywhere,
so every regional rule applies; a country known without any of its subdivisions (a profile
`country: US` and no state, a number the geocoder places nowhere in particular) may be any
of them, written `US-*`, so every state's rule applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from types import ModuleType

import phonenumbers

from tactful.model import CustomerProfile

_US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Washington D.C.": "DC", "Washington DC": "DC", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS",
    "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK",
    "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC",
    "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI",
    "Wyoming": "WY",
}  # fmt: skip
_CA_PROVINCES = {
    "Alberta": "AB", "British Columbia": "BC", "Manitoba": "MB", "New Brunswick": "NB",
    "Newfoundland and Labrador": "NL", "Newfoundland": "NL", "Nova Scotia": "NS",
    "Northwest Territories": "NT", "Nunavut": "NU", "Ontario": "ON",
    "Prince Edward Island": "PE", "Quebec": "QC", "Québec": "QC", "Saskatchewan": "SK",
    "Yukon": "YT",
}  # fmt: skip
_BY_COUNTRY = {"US": _US_STATES, "CA": _CA_PROVINCES}


def _subdivision_of(country: str, description: str) -> str | None:
    """`FL` from "Florida" or "Pensacola, FL"; None when the text names no subdivision."""
    names = _BY_COUNTRY.get(country)
    if not names or not description:
        return None
    if description in names:
        return names[description]
    tail = description.rsplit(",", 1)[-1].strip()
    if tail in names.values():
        return tail
    return names.get(tail)


def geodata() -> ModuleType:
    """phonenumbers' geocoder, its data loaded on first use: ~0.4 s of a process's start
    that a replay or service whose policy names no regions never needs. `tactful serve`
    loads it as it starts, so that no decision waits for it."""
    from phonenumbers import geocoder

    return geocoder


@lru_cache(maxsize=65536)
def phone_locations(number: str) -> tuple[str, ...]:
    """ISO 3166 codes a phone number points at: its country, and its subdivision (`US-FL`),
    or `US-*` when the number could be anywhere in the country."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    country = phonenumbers.region_code_for_number(parsed)
    if not country or country == "ZZ":
        return ()
    sub = _subdivision_of(country, geodata().description_for_number(parsed, "en"))
    return (country, f"{country}-{sub or '*'}")


def customer_regions(profile: CustomerProfile) -> frozenset[str]:
    """Every country and subdivision the customer may be in, as ISO 3166 codes (`XX-*`:
    any subdivision of XX)."""
    found: set[str] = set()
    for number in profile.phones:
        found.update(phone_locations(number))
    countries = {profile.country.upper()} if profile.country else set()
    countries |= {code for code in found if "-" not in code}
    found |= countries
    if profile.subdivision:
        sub = profile.subdivision.strip().upper()
        if "-" in sub:
            found.add(sub)
            found.add(sub.split("-", 1)[0])
        else:
            # A bare "FL" belongs to the candidate countries, or, with none known, to
            # the country whose subdivision codes include it.
            owners = countries or {c for c, names in _BY_COUNTRY.items() if sub in names.values()}
            found.update(f"{c}-{sub}" for c in owners)
            found.update(owners)
    for country in [c for c in found if "-" not in c]:
        if not any(c.startswith(country + "-") for c in found):
            found.add(f"{country}-*")  # the country is known, where in it is not
    return frozenset(found)


def in_regions(candidates: Iterable[str], wanted: Iterable[str]) -> bool:
    """Whether any candidate location lies in any wanted region (`US` covers `US-FL`,
    `US-*` may be `US-FL`)."""
    cands = set(candidates)
    for region in wanted:
        code = region.upper()
        if code in cands:
            return True
        if "-" in code:
            if code.split("-", 1)[0] + "-*" in cands:
                return True
        elif any(c.startswith(code + "-") for c in cands):
            return True
    return False
