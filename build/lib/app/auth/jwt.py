"""JWTs for frontends (PyJWT): pinned algorithms, audience, issuer, expiry; claims -> a viewer."""

from __future__ import annotations

from typing import Any

import jwt

from app.core.scopes import Scope
from app.core.settings import SecuritySettings
from app.core.viewer import Unauthenticated, Viewer

ROLES = ("student", "publisher", "admin")


class JwtVerifier:
    """Verifies tokens signed with the configured secret (HS*) or public key (RS*/ES*/EdDSA)."""

    def __init__(self, settings: SecuritySettings) -> None:
        self.settings = settings
        self.algorithms = settings.algorithms
        asymmetric = self.algorithms[0].startswith(("RS", "PS", "ES", "Ed"))
        self.key: str | None = settings.jwt_public_key if asymmetric else settings.jwt_secret

    @property
    def configured(self) -> bool:
        return bool(self.key)

    def verify(self, token: str) -> Viewer:
        if not self.key:
            raise Unauthenticated("JWT authentication is not configured on this server")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key,
                algorithms=self.algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                leeway=self.settings.jwt_leeway_seconds,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("The token is not meant for this service (audience)") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("The token's issuer is not trusted") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"The token lacks the '{exc.claim}' claim") from None
        except jwt.InvalidAlgorithmError:
            raise Unauthenticated("The token's algorithm is not accepted") from None
        except jwt.PyJWTError:
            raise Unauthenticated("The token is invalid") from None
        return self._viewer(claims)

    def _viewer(self, claims: dict[str, Any]) -> Viewer:
        lifetime = _number(claims.get("exp")) - _number(claims.get("iat"))
        if lifetime > self.settings.jwt_max_lifetime_seconds:
            raise Unauthenticated("The token lives longer than this service accepts")
        subject, role = claims.get("sub"), claims.get("role")
        if not isinstance(subject, str) or not subject or len(subject) > 256:
            raise Unauthenticated("The token's subject must be a user id")
        if role not in ROLES:
            raise Unauthenticated("The token's role must be one of student, publisher, admin")
        if role == "admin":
            return Viewer(role="admin", user_id=subject, scopes=frozenset({Scope.ADMIN}))
        if role == "publisher":
            publisher_id = claims.get("publisher_id")
            if not isinstance(publisher_id, str) or not publisher_id:
                raise Unauthenticated("A publisher token needs a 'publisher_id' claim")
            return Viewer(
                role="publisher",
                user_id=subject,
                publisher_id=publisher_id,
                scopes=frozenset({Scope.ANALYTICS_READ}),
            )
        return Viewer(role="student", user_id=subject)


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
