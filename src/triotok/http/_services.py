"""What the HTTP layer needs from the application, handed over by the composition root."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..modules import StoreHandle
from ..modules.access import ApiKeyRepository, KeyDirectory
from ..modules.tenants import TenantDirectory, TenantRepository
from ..supervision import ActorSystem

__all__ = ("HttpOptions", "Services")


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """HTTP settings (the composition root fills them from ``triotok.config.Settings``)."""

    host: str = "127.0.0.1"
    port: int = 8000
    reuse_port: bool = False
    graceful_timeout: float = 10.0
    access_log: bool = False
    max_body_bytes: int = 1_048_576
    rate_limit_per_ip: int = 100
    rate_limit_per_key: int = 600
    trust_proxy: bool = False
    #: How many trusted proxies append to X-Forwarded-For in front of the server.
    trusted_proxy_hops: int = 1
    operator_tenant: str = "ops"


@dataclass(slots=True)
class Services:
    """The running application as the routes see it."""

    options: HttpOptions
    system: ActorSystem
    store: StoreHandle
    tenants: TenantDirectory
    tenant_repository: TenantRepository
    keys: KeyDirectory
    key_repository: ApiKeyRepository
    #: Actors that must be running for ``/ready`` to answer 200.
    required: tuple[str, ...] = ()
    version: str = ""
    started_at: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)
