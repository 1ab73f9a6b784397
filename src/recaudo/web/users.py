"""Users and roles of the company (administrators only), and its password policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Form, Request, Response

from recaudo.domain.errors import Conflict, ValidationFailed
from recaudo.services import users
from recaudo.services.context import Role
from recaudo.services.users import ROLE_NAMES_ES, NewUser, Policy
from recaudo.web.common import ADMIN_ONLY, WebContext, redirect, render, require_role, web_router

router = web_router(prefix="/usuarios")

Admin = Annotated[WebContext, Depends(require_role(*ADMIN_ONLY))]
ROLES = tuple((role.value, ROLE_NAMES_ES[role]) for role in Role)
ROLE_HELP = {
    Role.ADMIN: "Todo, incluidos usuarios y configuración de canales.",
    Role.OPERATOR: "Importaciones, pagos, remesas y excepciones.",
    Role.CASHIER: "Buscar clientes, registrar pagos en efectivo o cheque e imprimir el recibo.",
    Role.AUDITOR: "Solo lectura, incluida la auditoría.",
}


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValidationFailed("Elija un rol válido.", field="role") from None


@router.get("")
def user_list(request: Request, ctx: Admin) -> Response:
    rows = users.list_users(ctx.uow(write=False), ctx.company_id, actor=ctx.actor)
    policy = users.password_policy(ctx.uow(write=False), ctx.company_id)
    return render(request, "users/list.html", users=rows, policy=policy)


@router.get("/nuevo")
def new_user_form(request: Request, ctx: Admin) -> Response:
    return render(request, "users/new.html", roles=ROLES, role_help=ROLE_HELP, values={})


@router.post("/nuevo")
def create_user(
    request: Request,
    ctx: Admin,
    email: Annotated[str, Form(max_length=254)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    values = {"email": email, "name": name, "role": role}
    try:
        created = users.create_user(
            ctx.uow(),
            NewUser(email, name, ctx.company_id, _role(role)),
            actor=ctx.actor,
            clock=ctx.clock,
        )
    except (ValidationFailed, Conflict) as exc:
        field = str(exc.details.get("field", "email"))
        return render(
            request,
            "users/new.html",
            status_code=422 if isinstance(exc, ValidationFailed) else 409,
            roles=ROLES,
            role_help=ROLE_HELP,
            values=values,
            errors={field: exc.message},
        )
    if created.provisional_password is None:
        ctx.flash(
            f"{created.email} ya tenía una cuenta en Recaudo: ahora también pertenece a esta "
            "empresa y conserva su contraseña."
        )
        return redirect(request, "/usuarios")
    return render(
        request,
        "users/provisional.html",
        email=created.email,
        password=created.provisional_password,
        created=True,
    )


@router.get("/politica")
def policy_form(request: Request, ctx: Admin) -> Response:
    policy = users.password_policy(ctx.uow(write=False), ctx.company_id)
    return render(request, "users/policy.html", policy=policy)


@router.post("/politica")
def save_policy(
    request: Request,
    ctx: Admin,
    min_length: Annotated[int, Form(ge=1, le=1000)],
    require_letters: Annotated[bool, Form()] = False,
    require_digits: Annotated[bool, Form()] = False,
) -> Response:
    policy = Policy(min_length, require_letters, require_digits)
    try:
        users.set_password_policy(
            ctx.uow(), ctx.company_id, policy, actor=ctx.actor, clock=ctx.clock
        )
    except ValidationFailed as exc:
        return render(
            request, "users/policy.html", status_code=422, policy=policy, error=exc.message
        )
    ctx.flash("Política de contraseñas guardada.")
    return redirect(request, "/usuarios")


@router.get("/{user_id}")
def user_detail(request: Request, ctx: Admin, user_id: int) -> Response:
    user = users.get_user(ctx.uow(write=False), ctx.company_id, user_id, actor=ctx.actor)
    return render(request, "users/detail.html", user=user, roles=ROLES, role_help=ROLE_HELP)


def _after_change(
    request: Request, ctx: WebContext, user_id: int, action: Callable[[], str]
) -> Response:
    """Run a change; its message (or the conflict's) is shown on the user's page."""
    try:
        ctx.flash(action())
    except Conflict as exc:
        ctx.flash(exc.message, "error")
    return redirect(request, f"/usuarios/{user_id}")


@router.post("/{user_id}/rol")
def change_role(
    request: Request, ctx: Admin, user_id: int, role: Annotated[str, Form(max_length=16)] = ""
) -> Response:
    new_role = _role(role)

    def act() -> str:
        users.change_role(
            ctx.uow(), ctx.company_id, user_id, new_role, actor=ctx.actor, clock=ctx.clock
        )
        return f"Rol cambiado a {ROLE_NAMES_ES[new_role]}."

    return _after_change(request, ctx, user_id, act)


@router.post("/{user_id}/desactivar")
def deactivate(request: Request, ctx: Admin, user_id: int) -> Response:
    def act() -> str:
        users.set_active(
            ctx.uow(), ctx.company_id, user_id, False, actor=ctx.actor, clock=ctx.clock
        )
        return "Usuario desactivado: ya no puede ingresar a esta empresa."

    return _after_change(request, ctx, user_id, act)


@router.post("/{user_id}/activar")
def activate(request: Request, ctx: Admin, user_id: int) -> Response:
    def act() -> str:
        users.set_active(ctx.uow(), ctx.company_id, user_id, True, actor=ctx.actor, clock=ctx.clock)
        return "Usuario activado."

    return _after_change(request, ctx, user_id, act)


@router.post("/{user_id}/restablecer")
def reset_password(request: Request, ctx: Admin, user_id: int) -> Response:
    user = users.get_user(ctx.uow(write=False), ctx.company_id, user_id, actor=ctx.actor)
    if user.email == ctx.session.email:
        ctx.flash(
            "Para cambiar su propia contraseña use «Contraseña» en la barra superior.", "error"
        )
        return redirect(request, f"/usuarios/{user_id}")
    password = users.reset_password(
        ctx.uow(), user_id, actor=ctx.actor, clock=ctx.clock, company_id=ctx.company_id
    )
    return render(
        request, "users/provisional.html", email=user.email, password=password, created=False
    )
