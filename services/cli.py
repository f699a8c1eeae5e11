"""`petitions`: run the embedded stack, migrate databases, import an organisation file.

Services are imported lazily inside the commands (by name, through importlib), so this module
depends on none of them and a broken service cannot stop the others' commands.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, NoReturn

import click

from services.stack import DEFAULT_NATS_PORT, DEFAULT_PORTS, SERVICES, Stack, StackError

DEMO_ORG_FILE = Path(__file__).resolve().parent / "routing" / "demo_org.yaml"
DEMO_PASSWORD = "demo"  # noqa: S105 - the published password of the demo accounts
SETTINGS_EXIT = 2


def _settings_error(service: str, exc: Exception) -> NoReturn:
    from shared.settings import describe_validation_error

    click.echo(
        f"Cấu hình không hợp lệ / invalid configuration ({service}): "
        f"{describe_validation_error(exc)}",
        err=True,
    )
    sys.exit(SETTINGS_EXIT)


def _load_settings(service: str) -> tuple[Any, ModuleType]:
    """`services.<service>.settings.Settings()` from the environment, or exit 2 with the reason."""
    module = importlib.import_module(f"services.{service}.settings")
    try:
        return module.Settings(), module
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        _settings_error(service, exc)


def _migrations_dir(settings_module: ModuleType) -> Path:
    assert settings_module.__file__ is not None
    return Path(settings_module.__file__).resolve().parent / "migrations"


@click.group(name="petitions")
def main() -> None:
    """Phản ánh, kiến nghị của người dân / Residents' petitions."""


@main.command()
@click.option(
    "--var",
    "var_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (SQLite files, NATS store, mailbox). Default: $PETITIONS_VAR_DIR or ./var",
)
@click.option("--no-demo", is_flag=True, help="Do not seed the demo organisation and accounts.")
@click.option(
    "--nats-credentials",
    "nats_credentials",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="With PETITIONS_NATS_URL: the directory of the services' seeds (<service>.nk) that "
    "`petitions nats credentials` wrote for that server.",
)
def up(var_dir: Path | None, no_demo: bool, nats_credentials: Path | None) -> None:
    """Run nats-server and the three services in this terminal; Ctrl-C stops them all.

    Data stays in the var directory, so the next run carries on where this one stopped.
    """
    from shared.nats_auth import BusCredentials
    from shared.settings import CommonSettings

    try:
        common = CommonSettings()
    except ValueError as exc:
        _settings_error("common", exc)
    var = (var_dir or common.var_dir).resolve()
    env = {k: v for k, v in os.environ.items() if k.startswith("PETITIONS_")}
    env["PETITIONS_VAR_DIR"] = str(var)
    if no_demo:
        env["PETITIONS_ROUTING_SEED_DEMO"] = "false"
    ports = {svc: _port_from_env(svc) for svc in SERVICES}
    stack = Stack(
        var_dir=var,
        ports=ports,
        nats_port=DEFAULT_NATS_PORT,
        nats_url=os.environ.get("PETITIONS_NATS_URL") or None,
        env=env,
        host=common.host,
        nats_credentials=BusCredentials(nats_credentials) if nats_credentials else None,
    )

    def _interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Both, explicitly: a shell starts background jobs with SIGINT ignored, and `kill -INT`
    # must still stop the stack.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    click.echo(f"Khởi động / starting… (data: {var})")
    try:
        stack.start()
        stack.wait_ready(timeout=120)
        _print_welcome(stack, demo=not no_demo)
        while not (dead := stack.exited()):
            time.sleep(0.5)
        for svc, code in dead.items():
            click.echo(f"{svc} đã dừng / {svc} stopped (exit code {code})", err=True)
        raise SystemExit(1)
    except StackError as exc:
        click.echo(f"Không khởi động được / could not start: {exc}", err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        click.echo("\nĐang dừng / stopping…")
    finally:
        # A second Ctrl-C must not leave orphans behind: stop() is bounded by its grace period.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    click.echo(f"Đã dừng; dữ liệu vẫn ở / stopped; data kept in {var}")


def _port_from_env(service: str) -> int:
    name = f"PETITIONS_{service.upper()}_PORT"
    raw = os.environ.get(name)
    if raw is None:
        return DEFAULT_PORTS[service]
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        click.echo(
            f"Cấu hình không hợp lệ / invalid configuration: {name}={raw!r} is not a port number",
            err=True,
        )
        sys.exit(SETTINGS_EXIT)
    return port


def _print_welcome(stack: Stack, *, demo: bool) -> None:
    intake, routing, notify = (stack.url(s) for s in SERVICES)
    lines = [
        "",
        "Petitions đã sẵn sàng / is ready",
        f"  Gửi phản ánh / submit a petition     {intake}/",
        f"  Theo dõi / track a petition          {intake}/track/<mã / token> (link after submitting)",
        f"  Cán bộ / member workspace            {routing}/",
        f"  API cho cán bộ / member API          {routing}/docs",
        f"  Bảng điều khiển / dashboard          {notify}/",
        f"  Hộp thư thử / demo mailbox           {notify}/mail",
        f"  NATS                                 {stack.nats_url}",
        *_nats_credentials_line(stack),
        f"  Dữ liệu / data                       {stack.var_dir}",
    ]
    accounts = list(_demo_accounts()) if demo else []
    if accounts:
        lines += [
            "",
            f"Tài khoản thử (mật khẩu `{DEMO_PASSWORD}`) / demo logins (password `demo`):",
        ]
        lines += [f"  {u:<24} {role:<10} {unit}" for u, role, unit in accounts]
    lines += ["", "Ctrl-C để dừng / to stop", ""]
    click.echo("\n".join(lines))


def _nats_credentials_line(stack: Stack) -> list[str]:
    if stack.credentials is None:
        return []
    admin = stack.credentials.seed_file("admin")
    return [f"  NATS (quản trị / operator nkey)      {admin}"]


@main.group()
def nats() -> None:
    """The bus's users and permissions (docs/security.md)."""


@nats.command("permissions")
def nats_permissions() -> None:
    """Print, as a markdown table, what each service's NATS user may do (derived from the code)."""
    from shared.nats_auth import permissions_table

    click.echo(permissions_table(), nl=False)


@nats.command("credentials")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where the seeds (<user>.nk) and nats-server.conf go; existing seeds are kept.",
)
@click.option(
    "--route",
    "routes",
    multiple=True,
    help="A cluster route (nats://host:6222), repeated for each node; adds route authorization.",
)
@click.option(
    "--cluster-listen",
    "listen",
    default="0.0.0.0:6222",
    show_default=True,
    help="Where each node listens for routes (with --route).",
)
def nats_credentials(directory: Path, routes: tuple[str, ...], listen: str) -> None:
    """Create the NATS users' nkey seeds (once) and write the nats-server config for them."""
    from shared.nats_auth import BusCredentials, Cluster

    creds = BusCredentials.ensure(directory)
    cluster = Cluster(listen=listen, routes=routes) if routes else None
    config = creds.write_server_config(cluster)
    click.echo(f"nats-server config: {config}")
    for user in creds.users:
        click.echo(f"  {user:<8} {creds.public_key(user)}  {creds.seed_file(user)}")


def _demo_accounts(limit_members: int = 8) -> Iterator[tuple[str, str, str]]:
    """(username, role, unit) from routing's demo organisation: every leader and admin, and
    one member of each of the first few units."""
    if not DEMO_ORG_FILE.exists():
        return
    import yaml

    try:
        data = yaml.safe_load(DEMO_ORG_FILE.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return
    member_units: set[str] = set()
    for person in _people(data):
        role = _role(person)
        unit = str(person.get("unit") or person.get("unit_id") or "")
        if role == "member":
            if unit in member_units or len(member_units) >= limit_members:
                continue
            member_units.add(unit)
        yield str(person["username"]), role, unit


def _people(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping with a `username`, wherever the file puts it (members, admins, …)."""
    if isinstance(node, dict):
        if "username" in node:
            yield node
            return
        for value in node.values():
            yield from _people(value)
    elif isinstance(node, list):
        for item in node:
            yield from _people(item)


def _role(person: dict[str, Any]) -> str:
    role = person.get("role") or person.get("roles")
    if isinstance(role, list):
        role = ",".join(str(r) for r in role)
    if role:
        return str(role)
    if person.get("leader") or person.get("is_leader"):
        return "leader"
    return "member"


@main.command()
@click.option(
    "--service",
    type=click.Choice([*SERVICES, "all"]),
    default="all",
    show_default=True,
    help="Which service's database to migrate.",
)
def migrate(service: str) -> None:
    """Bring each service's database to the latest schema (Alembic upgrade head)."""
    from shared.migrate import upgrade
    from shared.settings import normalise_database_url

    for svc in SERVICES if service == "all" else (service,):
        settings, module = _load_settings(svc)
        url = normalise_database_url(str(settings.database_url))
        click.echo(f"{svc}: nâng cấp cơ sở dữ liệu / upgrading database…")
        upgrade(_migrations_dir(module), url)
        click.echo(f"{svc}: xong / done")


@main.group()
def org() -> None:
    """Cơ cấu tổ chức / the organisation: units, members, categories, ladder."""


@org.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def org_import(file: Path) -> None:
    """Import an organisation YAML file into routing's database (brought to the latest schema)."""
    from shared.db import create_engine
    from shared.migrate import upgrade
    from shared.settings import normalise_database_url

    settings, module = _load_settings("routing")
    org_module = importlib.import_module("services.routing.org")
    try:
        org_module.load_org_file(file)
    except org_module.OrgFileError as exc:
        click.echo(f"Lỗi tệp tổ chức / organisation file error: {exc}", err=True)
        sys.exit(1)
    url = normalise_database_url(str(settings.database_url))
    upgrade(_migrations_dir(module), url)

    sessions_module = importlib.import_module("services.routing.sessions")

    async def run() -> Any:
        engine = create_engine(url)
        try:
            summary = await org_module.import_org(engine, file, env=settings.env)
            # Sessions the import ended (deactivated, new role, unit or password) are refused
            # by every service now, not at routing's next look.
            await _announce_ended_sessions(sessions_module, engine, settings)
            return summary
        finally:
            await engine.dispose()

    try:
        summary = asyncio.run(run())
    except org_module.OrgFileError as exc:
        click.echo(f"Lỗi tệp tổ chức / organisation file error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"Đã nhập / imported {file}: {_describe(summary)}")


async def _announce_ended_sessions(sessions_module: Any, engine: Any, settings: Any) -> None:
    """Tell every service over the bus, as routing's NATS user, which sessions just ended; if
    the bus is away, routing announces them itself shortly."""
    from shared.nats_auth import connect_options

    try:
        await sessions_module.announce_from_outside(
            engine,
            settings.nats_servers,
            replicas=settings.stream_replicas,
            **connect_options("routing", settings),
        )
    except Exception as exc:
        click.echo(
            "Chưa báo được qua NATS; routing sẽ báo trong giây lát / could not announce "
            f"ended sessions over NATS ({type(exc).__name__}); routing will shortly",
            err=True,
        )


@main.group()
def sessions() -> None:
    """Phiên đăng nhập của cán bộ / staff sign-in sessions (docs/security.md)."""


@sessions.command("end")
@click.option("--username", default=None, help="End this person's sessions.")
@click.option("--all", "everyone", is_flag=True, help="End everyone's sessions.")
def sessions_end(username: str | None, everyone: bool) -> None:
    """End sessions now, in every service: that person (or everyone) signs in again."""
    from shared.db import create_engine
    from shared.settings import normalise_database_url

    if (username is None) == (not everyone):
        click.echo("Cần --username hoặc --all / give --username or --all", err=True)
        sys.exit(2)
    settings, _ = _load_settings("routing")
    module = importlib.import_module("services.routing.sessions")

    async def run() -> int:
        engine = create_engine(normalise_database_url(str(settings.database_url)))
        try:
            ended = int(await module.end_sessions(engine, username=username))
            await _announce_ended_sessions(module, engine, settings)
            return ended
        finally:
            await engine.dispose()

    click.echo(f"Đã kết thúc / ended: {asyncio.run(run())}")


@main.group()
def ladder() -> None:
    """Thang chuyển cấp / the escalation ladder and its deadlines."""


@ladder.command("simulate")
@click.option(
    "--since",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Replay the cases opened since this date (YYYY-MM-DD).",
)
@click.option(
    "--ladder",
    "ladder_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The ladder to try (default: the one routing runs with).",
)
@click.option(
    "--calendar",
    "calendar_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Calendars to try (a file with `calendar:` and `units:` sections).",
)
def ladder_simulate(since: Any, ladder_file: Path | None, calendar_file: Path | None) -> None:
    """How many escalations a changed ladder or calendar would have made, per rung and unit,
    next to what happened. Reads routing's database; changes nothing."""
    from shared.db import create_engine
    from shared.settings import normalise_database_url

    settings, _ = _load_settings("routing")
    simulate_module = importlib.import_module("services.routing.simulate")
    ladder_module = importlib.import_module("services.routing.ladder")

    async def run() -> Any:
        engine = create_engine(normalise_database_url(str(settings.database_url)))
        try:
            return await simulate_module.simulate(
                engine,
                since=since.date(),
                ladder_file=ladder_file,
                calendar_file=calendar_file,
                base_ladder=settings.ladder_file,
            )
        finally:
            await engine.dispose()

    try:
        report = asyncio.run(run())
    except ladder_module.LadderFileError as exc:
        click.echo(f"Lỗi tệp thang / ladder file error: {exc}", err=True)
        sys.exit(1)
    click.echo(simulate_module.format_report(report))


def _describe(summary: Any) -> str:
    if dataclasses.is_dataclass(summary) and not isinstance(summary, type):
        fields = dataclasses.asdict(summary)
    elif hasattr(summary, "model_dump"):
        fields = summary.model_dump()
    else:
        return str(summary)
    return ", ".join(f"{k}={v}" for k, v in fields.items())


@main.group()
def open311() -> None:
    """Open311 GeoReport: khóa API cho ứng dụng / API keys for client applications."""


@open311.group("key")
def open311_key() -> None:
    """Khóa API của từng ứng dụng / one API key per client application."""


def _with_intake_engine(work: Any) -> Any:
    """Run `work(engine)` against intake's database, brought to the latest schema first."""
    from shared.db import create_engine
    from shared.migrate import upgrade
    from shared.settings import normalise_database_url

    settings, module = _load_settings("intake")
    url = normalise_database_url(str(settings.database_url))
    upgrade(_migrations_dir(module), url)

    async def run() -> Any:
        engine = create_engine(url)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@open311_key.command("create")
@click.option("--client", required=True, help="Tên ứng dụng / the client application's name.")
def open311_key_create(client: str) -> None:
    """Issue a key for one client and print it: this is the only time it is shown (intake
    keeps only its hash)."""
    import getpass
    from datetime import UTC, datetime

    keys = importlib.import_module("services.intake.open311.keys")
    try:
        issued = _with_intake_engine(
            lambda engine: keys.issue_key(
                engine,
                client=client,
                created_by=f"cli:{getpass.getuser()}",
                now=datetime.now(UTC),
            )
        )
    except keys.InvalidClientName as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"Khóa / key ({issued.client}, id {issued.id}):")
    click.echo(issued.key)
    click.echo("Chỉ hiển thị một lần / shown only this once.", err=True)


@open311_key.command("list")
def open311_key_list() -> None:
    """Every key issued (by its prefix, never the key itself)."""
    keys = importlib.import_module("services.intake.open311.keys")
    for key in _with_intake_engine(keys.list_keys):
        revoked = f" thu hồi / revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else ""
        click.echo(f"{key.id}  {key.key_prefix}…  {key.client}{revoked}")


@open311_key.command("revoke")
@click.argument("key_id")
def open311_key_revoke(key_id: str) -> None:
    """Refuse a key from now on; what its client sent stays."""
    from datetime import UTC, datetime

    keys = importlib.import_module("services.intake.open311.keys")
    done = _with_intake_engine(
        lambda engine: keys.revoke_key(engine, key_id, now=datetime.now(UTC))
    )
    if done is None:
        click.echo(f"Không có khóa này / no such key: {key_id}", err=True)
        sys.exit(1)
    click.echo(f"Đã thu hồi / revoked: {key_id}")
