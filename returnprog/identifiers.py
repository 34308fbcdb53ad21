"""Checks for the identifiers the programme handles: BSN, V-number, IBAN, oblast codes.

Pure functions; marshmallow schemas call them so forms and API share one rule.
"""
from __future__ import annotations

import re

# ISO 3166-2:UA subdivisions: 24 oblasts, Crimea (UA-43), and the cities with special
# status Kyiv (UA-30) and Sevastopol (UA-40).
OBLASTS: dict[str, str] = {
    "UA-05": "Vinnytsia Oblast", "UA-07": "Volyn Oblast", "UA-09": "Luhansk Oblast",
    "UA-12": "Dnipropetrovsk Oblast", "UA-14": "Donetsk Oblast", "UA-18": "Zhytomyr Oblast",
    "UA-21": "Zakarpattia Oblast", "UA-23": "Zaporizhzhia Oblast",
    "UA-26": "Ivano-Frankivsk Oblast", "UA-30": "Kyiv (city)", "UA-32": "Kyiv Oblast",
    "UA-35": "Kirovohrad Oblast", "UA-40": "Sevastopol (city)",
    "UA-43": "Autonomous Republic of Crimea", "UA-46": "Lviv Oblast",
    "UA-48": "Mykolaiv Oblast", "UA-51": "Odesa Oblast", "UA-53": "Poltava Oblast",
    "UA-56": "Rivne Oblast", "UA-59": "Sumy Oblast", "UA-61": "Ternopil Oblast",
    "UA-63": "Kharkiv Oblast", "UA-65": "Kherson Oblast", "UA-68": "Khmelnytskyi Oblast",
    "UA-71": "Cherkasy Oblast", "UA-74": "Chernihiv Oblast", "UA-77": "Chernivtsi Oblast",
}

# ASCII digits only: \d would also take Arabic-Indic or Devanagari digits.
_V_NUMBER = re.compile(r"^[0-9]{10}$")
_BSN = re.compile(r"^[0-9]{9}$")
# What may be typed (the OpenAPI document's ``pattern``): the digits with the spaces and dots
# that :func:`normalise_v_number` removes; a BSN may also be left empty.
V_NUMBER_TYPED = r"^[\s.]*(?:[0-9][\s.]*){10}$"
BSN_TYPED = r"^[\s.]*(?:(?:[0-9][\s.]*){9})?$"


def normalise_v_number(value: str) -> str:
    """Strip the spaces and dots people type into a V-number (IND foreigner number)."""
    return re.sub(r"[\s.]", "", value or "")


def is_valid_v_number(value: str) -> bool:
    """A V-number is ten digits (IND letters print it as 'V-nummer 1234567890')."""
    return bool(_V_NUMBER.match(value or ""))


def is_valid_bsn(value: str) -> bool:
    """BSN: nine digits passing the 11-check (weights 9..2 and -1 for the last digit)."""
    if not _BSN.match(value or ""):
        return False
    digits = [int(c) for c in value]
    total = sum(d * w for d, w in zip(digits[:8], range(9, 1, -1))) - digits[8]
    return total % 11 == 0 and value != "000000000"


def is_valid_oblast(code: str) -> bool:
    """True for an ISO 3166-2:UA subdivision code such as 'UA-30'."""
    return code in OBLASTS


def normalise_iban(value: str) -> str:
    """IBANs are typed with spaces and in lower case; compare them compact and upper."""
    return re.sub(r"\s", "", value or "").upper()


def iban_problem(value: str) -> str | None:
    """Why ``value`` is not a valid IBAN, or None when it is (schwifty: country, length, checksum)."""
    from schwifty import IBAN
    from schwifty.exceptions import SchwiftyException

    try:
        IBAN(normalise_iban(value), validate_bban=True)
    except SchwiftyException as exc:
        return str(exc) or "not a valid IBAN"
    return None


# How a checked identity document is recorded on the signed document (in Dutch: the
# document is the programme's record), by the type the counsellor chose.
ID_TYPE_RECORDED = {"passport": "paspoort", "id_card": "Oekraïense identiteitskaart",
                    "residence": "verblijfsdocument", "other": "identiteitsbewijs"}
