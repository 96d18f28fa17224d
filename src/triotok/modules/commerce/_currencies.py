"""The ISO 4217 codes a price may be in: the active currencies (no funds, metals or test codes).

Built in rather than read from the platform, so a product validates the same
on every node and in every environment. Amounts are integers in the
currency's minor unit (cents for ``EUR``, yen for ``JPY``).
"""

from __future__ import annotations

__all__ = ("CURRENCIES", "CURRENCY_PATTERN")

#: Active ISO 4217 currency codes (2024), in alphabetical order.
CURRENCIES: frozenset[str] = frozenset(
    # One table of codes reads better than 160 quoted strings.
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB
    BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP
    DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF
    IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK
    LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN
    NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND
    TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XOF XPF
    YER ZAR ZMW ZWG
    """.split()  # noqa: SIM905
)

#: A regular expression of exactly the codes above (for JSON Schema and msgspec).
CURRENCY_PATTERN = "|".join(sorted(CURRENCIES))
