"""The orders module (placeholder: the payment gateway only; the module itself comes next).

:mod:`~triotok.modules.orders._payments`: the tenant's payment provider behind
one circuit breaker named ``payments``.
"""

from ..._util import fixup_module_metadata
from ._payments import Charge as Charge
from ._payments import HttpProvider as HttpProvider
from ._payments import ManualProvider as ManualProvider
from ._payments import PaymentDeclined as PaymentDeclined
from ._payments import PaymentError as PaymentError
from ._payments import PaymentProvider as PaymentProvider
from ._payments import Payments as Payments
from ._payments import ProviderUnavailable as ProviderUnavailable
from ._payments import Refund as Refund

__all__ = (
    "Charge",
    "HttpProvider",
    "ManualProvider",
    "PaymentDeclined",
    "PaymentError",
    "PaymentProvider",
    "Payments",
    "ProviderUnavailable",
    "Refund",
)

fixup_module_metadata(__name__, globals())
