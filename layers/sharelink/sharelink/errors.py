"""Typed errors. Provider code raises these; only the HTTP resolver turns them into responses."""

from __future__ import annotations


class SharelinkError(Exception):
    """An error with a place in the public error table (DESIGN.md, "Errors")."""

    status = 500
    code = "internal_error"
    transient = False
    # A create that failed this way may still have made its share (sharelink.attempts).
    may_have_acted = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        provider_code: int | str | None = None,
        details: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.provider_code = provider_code
        self.details = details or []

    def to_dict(self) -> dict[str, object]:
        """The `error` member of every error answer and rejected result."""
        return {
            "code": self.code,
            "message": self.message,
            "details": self.details,
            "provider": self.provider,
            "provider_code": self.provider_code,
        }


class MalformedJson(SharelinkError):
    status = 400
    code = "malformed_json"


class RequestTooLarge(SharelinkError):
    status = 413
    code = "request_too_large"


class RouteNotFound(SharelinkError):
    status = 404
    code = "not_found"


class InvalidRequest(SharelinkError):
    status = 422
    code = "invalid_request"


class IdempotencyConflict(SharelinkError):
    status = 409
    code = "idempotency_conflict"


class OutcomeUnknown(SharelinkError):
    """An earlier attempt's create may have made a share that cannot be told apart from others: none is made again."""

    status = 409
    code = "outcome_unknown"


class ProviderNotFound(SharelinkError):
    status = 404
    code = "provider_not_found"


class RequestObjectMissing(SharelinkError):
    status = 404
    code = "request_not_found"


class RequestUnreadable(SharelinkError):
    status = 403
    code = "request_unreadable"


class ProviderForbidden(SharelinkError):
    status = 403
    code = "provider_forbidden"


class ProviderRejected(SharelinkError):
    status = 422
    code = "provider_rejected"


class RetryLater(SharelinkError):
    """A failure that says when to try again (the Retry-After header; a storage request's next delivery)."""

    transient = True

    def __init__(self, message: str, *, retry_after: int = 1, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ProviderRateLimited(RetryLater):
    status = 429
    code = "provider_rate_limited"


class AttemptUnsettled(RetryLater):
    """An earlier attempt's create may still be under way at the provider."""

    status = 409
    code = "idempotency_conflict"


class ProviderAuthFailed(SharelinkError):
    status = 502
    code = "provider_auth_failed"
    transient = True

    @classmethod
    def refused(cls, rejection: TokenRejected, reason: str) -> ProviderAuthFailed:
        """The provider's refusal of a token or credentials, as the error a caller sees."""
        return cls(f"{reason}: {rejection.message}", provider=rejection.provider, provider_code=rejection.provider_code)


class ProviderError(SharelinkError):
    """A 5xx, an answer that is not the provider's envelope, an unknown code: what happened is not known."""

    status = 502
    code = "provider_error"
    transient = True
    may_have_acted = True


class ProviderUnreachable(ProviderError):
    """The connection was refused: the request never reached the provider."""

    may_have_acted = False


class UploadRejected(SharelinkError):
    """An upload that can never succeed as it is (too large, a name or type the provider refuses, content that does
    not match its MD5): refused for this object version, not retried."""

    status = 422
    code = "upload_rejected"


class StorageUnavailable(SharelinkError):
    """S3 could not be read for now (throttled, a 5xx, a stream that kept breaking off), or the idempotency table kept
    leaving part of a batch unprocessed: worth another try."""

    status = 503
    code = "storage_unavailable"
    transient = True


class ProviderTimeout(SharelinkError):
    status = 504
    code = "provider_timeout"
    transient = True
    may_have_acted = True


class NoTimeLeft(ProviderTimeout):
    """The call was never sent: the invocation had no time left for it, so it did nothing."""

    may_have_acted = False


class TokenRejected(Exception):
    """The provider refused the access token; the caller re-reads the secret once before giving up."""

    def __init__(self, provider: str, provider_code: int | str | None, message: str) -> None:
        super().__init__(message)
        self.provider = provider
        self.provider_code = provider_code
        self.message = message
