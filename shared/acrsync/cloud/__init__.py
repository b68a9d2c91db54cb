"""The one adapter layer over the Alibaba Cloud SDKs: credentials, endpoints, retries inside a time
budget, typed errors, declared RAM permissions and call counting. See docs/ARCHITECTURE.md.

SDK modules are imported only when a client of that service is first built (cold start).
"""

from acrsync.cloud.clients import CloudSession, Endpoints, Timeouts
from acrsync.cloud.credentials import Creds
from acrsync.cloud.errors import (
    AccessDenied,
    BudgetExhausted,
    CloudError,
    CredentialsInvalid,
    NetworkError,
    NoCredentials,
    NotFound,
    ServerError,
    Throttled,
    UndeclaredOperation,
    Unreachable,
)
from acrsync.cloud.retry import Budget, RetryPolicy

__all__ = [
    "AccessDenied", "Budget", "BudgetExhausted", "CloudError", "CloudSession", "Creds", "CredentialsInvalid",
    "Endpoints", "NetworkError", "NoCredentials", "NotFound", "RetryPolicy", "ServerError", "Throttled",
    "Timeouts", "UndeclaredOperation", "Unreachable",
]
