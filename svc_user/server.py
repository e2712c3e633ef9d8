"""The gRPC face of svc_user: protobuf in, domain calls, protobuf out; nothing else."""

from __future__ import annotations

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from trading.v1 import user_pb2, user_pb2_grpc

from common.context import current_client_address, current_identity
from common.server import Registrar
from svc_user.domain import ProfileChanges, User
from svc_user.service import UserService

SERVICE_NAME = user_pb2.DESCRIPTOR.services_by_name["UserService"].full_name


def _timestamp(moment: object) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)  # type: ignore[arg-type]
    return stamp


def profile_message(user: User) -> user_pb2.UserProfile:
    return user_pb2.UserProfile(
        user_id=user.user_id,
        username=user.username,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        phone=user.phone or "",
        date_of_birth=user.date_of_birth.isoformat() if user.date_of_birth else "",
        marketing_emails_consent=user.marketing_emails_consent,
        created_at=_timestamp(user.created_at),
        updated_at=_timestamp(user.updated_at),
    )


def _optional(message: object, field: str) -> str | None:
    return getattr(message, field) if message.HasField(field) else None  # type: ignore[attr-defined]


class UserServicer(user_pb2_grpc.UserServiceServicer):
    def __init__(self, service: UserService) -> None:
        self._service = service

    def Register(
        self, request: user_pb2.RegisterRequest, context: grpc.ServicerContext
    ) -> user_pb2.RegisterResponse:
        user = self._service.register(
            username=request.username,
            email=request.email,
            password=request.password,
            first_name=request.first_name,
            last_name=request.last_name,
            phone=_optional(request, "phone"),
            date_of_birth=_optional(request, "date_of_birth"),
            marketing_emails_consent=(
                request.marketing_emails_consent
                if request.HasField("marketing_emails_consent")
                else None
            ),
        )
        return user_pb2.RegisterResponse(
            message="User registered successfully", user_id=user.user_id
        )

    def Login(
        self, request: user_pb2.LoginRequest, context: grpc.ServicerContext
    ) -> user_pb2.LoginResponse:
        pair = self._service.login(request.username, request.password, current_client_address())
        return user_pb2.LoginResponse(
            access_token=pair.access_token,
            token_type="bearer",
            expires_in=pair.expires_in,
            refresh_token=pair.refresh_token,
        )

    def RefreshToken(
        self, request: user_pb2.RefreshTokenRequest, context: grpc.ServicerContext
    ) -> user_pb2.RefreshTokenResponse:
        pair = self._service.refresh(request.refresh_token)
        return user_pb2.RefreshTokenResponse(
            access_token=pair.access_token,
            token_type="bearer",
            expires_in=pair.expires_in,
            refresh_token=pair.refresh_token,
        )

    def Logout(
        self, request: user_pb2.LogoutRequest, context: grpc.ServicerContext
    ) -> user_pb2.LogoutResponse:
        self._service.logout(current_identity())
        return user_pb2.LogoutResponse(message="Logged out successfully")

    def GetProfile(
        self, request: user_pb2.GetProfileRequest, context: grpc.ServicerContext
    ) -> user_pb2.GetProfileResponse:
        user = self._service.profile(current_identity())
        return user_pb2.GetProfileResponse(profile=profile_message(user))

    def UpdateProfile(
        self, request: user_pb2.UpdateProfileRequest, context: grpc.ServicerContext
    ) -> user_pb2.UpdateProfileResponse:
        changes = ProfileChanges(
            first_name=_optional(request, "first_name"),
            last_name=_optional(request, "last_name"),
            email=_optional(request, "email"),
            phone=_optional(request, "phone"),
            date_of_birth=_optional(request, "date_of_birth"),
            marketing_emails_consent=(
                request.marketing_emails_consent
                if request.HasField("marketing_emails_consent")
                else None
            ),
        )
        user, changed = self._service.update_profile(current_identity(), changes)
        message = "Profile updated successfully" if changed else "Nothing to update"
        return user_pb2.UpdateProfileResponse(message=message, user=profile_message(user))

    def ChangePassword(
        self, request: user_pb2.ChangePasswordRequest, context: grpc.ServicerContext
    ) -> user_pb2.ChangePasswordResponse:
        self._service.change_password(
            current_identity(),
            request.current_password,
            request.new_password,
            current_client_address(),
        )
        return user_pb2.ChangePasswordResponse(message="Password changed successfully")

    def ExportData(
        self, request: user_pb2.ExportDataRequest, context: grpc.ServicerContext
    ) -> user_pb2.ExportDataResponse:
        export = self._service.export(current_identity())
        return user_pb2.ExportDataResponse(
            profile=profile_message(export.user),
            sessions=[
                user_pb2.SessionRecord(
                    session_id=session.session_id,
                    created_at=_timestamp(session.created_at),
                    expires_at=_timestamp(session.expires_at),
                    revoked=session.revoked,
                )
                for session in export.sessions
            ],
            trading=export.trading,
            exported_at=_timestamp(export.exported_at),
        )

    def CloseAccount(
        self, request: user_pb2.CloseAccountRequest, context: grpc.ServicerContext
    ) -> user_pb2.CloseAccountResponse:
        self._service.close_account(
            current_identity(), request.current_password, current_client_address()
        )
        return user_pb2.CloseAccountResponse(message="Account closed")

    def GetJwks(
        self, request: user_pb2.GetJwksRequest, context: grpc.ServicerContext
    ) -> user_pb2.GetJwksResponse:
        return user_pb2.GetJwksResponse(keys=[user_pb2.Jwk(**key) for key in self._service.jwks()])


def register(servicer: UserServicer) -> Registrar:
    def add(server: grpc.Server) -> None:
        user_pb2_grpc.add_UserServiceServicer_to_server(servicer, server)

    return add
