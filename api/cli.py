"""``careledger``: run the service, and the operator's commands.

Text for people goes to stderr; what a command produces (an API key, the accounts, the deployment,
counts) goes to stdout, and with ``--output json`` as one JSON document
(:mod:`ledger.command_line`).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.markup import escape

from api import log_redaction
from api.main import SWITCH_INTERVAL_SECONDS, create_app
from api.service import Service
from ledger.command_line import Output, OutputFormat, emit_json, version_option
from ledger.command_line import human as console
from ledger.config import Settings
from ledger.exceptions import ChainLockedError, InputError, LedgerError, StoreLockedError
from ledger.files.private import PRIVATE_UMASK
from ledger.runtime import ADMIN_KEY, RELAYER_KEY, open_keyring
from ledger.store import open_database
from ledger.store.apps import Role, list_apps
from ledger.store.apps import create_app as create_api_app
from ledger.store.export import export_index

app = typer.Typer(help="CareLedger: consent and record-integrity ledger.", no_args_is_help=True)


@app.callback()
def _main(version: Annotated[bool, version_option("careledger")] = False) -> None:
    """CareLedger: consent and record-integrity ledger.

    Every file a command creates is its user's alone (umask 077): the data directory holds
    patients' records, keys and secrets."""
    os.umask(PRIVATE_UMASK)


DataDir = Annotated[Path | None, typer.Option(help="data directory (default: CARELEDGER_DATA_DIR or ./data)")]


def _settings(data_dir: Path | None, **overrides: object) -> Settings:
    """The settings, with the command's options on top; settings refused end the command with their message."""
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    try:
        return Settings(**values)
    except InputError as err:
        console.print(f"[red]{err.code}[/]: {escape(err.message)}")
        raise typer.Exit(1) from err


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="listen address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="listen port (default 8000)")] = None,
) -> None:
    """Run the API on the configured chain (the embedded one by default), deploying on first start."""
    settings = _settings(data_dir, host=host, port=port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    proxies = ",".join(p.strip() for p in settings.trusted_proxies.split(",") if p.strip())
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
        proxy_headers=bool(proxies),  # uvicorn would otherwise trust X-Forwarded-For from 127.0.0.1
        forwarded_allow_ips=proxies or None,
    )  # configures uvicorn's loggers: the redactor goes on their handlers next
    log_redaction.install(settings)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    uvicorn.Server(config).run()


@app.command()
def accounts(data_dir: DataDir = None, output: Output = OutputFormat.TEXT) -> None:
    """Print the ledger's own chain accounts (creating the admin and relayer keys on first use), so
    that an operator can fund them on a network that charges for gas before ``deploy``. Needs only
    the keystore and its passphrase, not the chain."""
    keyring = open_keyring(_settings(data_dir))
    keyring.get_or_create(ADMIN_KEY)
    keyring.get_or_create(RELAYER_KEY)
    found = {name: str(keyring.get(name).address) for name in keyring.names()}
    if output is OutputFormat.JSON:
        emit_json({"accounts": found})
        return
    for name, address in found.items():
        print(f"{name}\t{address}")


@app.command()
def deploy(data_dir: DataDir = None, output: Output = OutputFormat.TEXT) -> None:
    """Deploy the contracts on the configured chain (once: later runs check and reuse the record) and
    print where they are. The addresses are written to DATA_DIR/deployment.json."""
    service = _open_stopped_service(data_dir)  # deploys on first open
    try:
        deployment, data = service.ledger.deployment, service.settings.data_dir
    finally:
        service.close()
    console.print(
        f"chain {deployment.chain_id}: RecordAnchor {deployment.record_anchor}, "
        f"ConsentRegistry {deployment.consent_registry}, from block {deployment.deploy_block}; "
        f"admin {deployment.admin}; recorded in {data}/deployment.json"
    )
    if output is OutputFormat.JSON:
        emit_json(
            {
                "chainId": deployment.chain_id,
                "recordAnchor": str(deployment.record_anchor),
                "consentRegistry": str(deployment.consent_registry),
                "deployBlock": deployment.deploy_block,
                "admin": str(deployment.admin),
            }
        )


@app.command("create-admin")
def create_admin(
    organisation: Annotated[str, typer.Option(help="the operator's organisation")] = "CareLedger operator",
    name: Annotated[str, typer.Option(help="name of the admin app")] = "admin",
    if_none: Annotated[bool, typer.Option("--if-none", help="do nothing if a live admin app exists")] = False,
    data_dir: DataDir = None,
    output: Output = OutputFormat.TEXT,
) -> None:
    """Create an admin app (and its organisation) and print its API key, once. Run it while the
    service is stopped (the embedded chain has one writer)."""
    service = _open_stopped_service(data_dir)
    try:
        if if_none and _live_admins(service):
            console.print("an admin app exists already; its key was printed when it was created")
            if output is OutputFormat.JSON:
                emit_json({"created": False})
            return
        org = service.create_organisation(organisation)
        created, api_key = create_api_app(service.db.conn, org.id, name, {Role.ADMIN})
        admins = _live_admins(service)
    finally:
        service.close()
    console.print(f"admin app {created.name!r} (id {created.id}) of {org.name!r}; {len(admins)} live admin app(s)")
    console.print("API key (shown only now, store it safely):")
    if output is OutputFormat.JSON:
        emit_json({"created": True, "appId": created.id, "name": created.name, "apiKey": api_key})
    else:
        print(api_key)


def _open_stopped_service(data_dir: Path | None) -> Service:
    """The service's state, for operator commands run while the service itself is stopped."""
    try:
        return Service.open(_settings(data_dir))
    except (ChainLockedError, StoreLockedError) as err:
        console.print(f"[red]the data directory is in use by a running service[/] ({err.message}); stop it first")
        raise typer.Exit(2) from err
    except LedgerError as err:
        console.print(f"[red]{err.code}[/]: {err.message}")
        raise typer.Exit(1) from err


def _live_admins(service: Service) -> list[object]:
    return [a for a in list_apps(service.db.conn) if Role.ADMIN in a.roles and a.revoked_at is None]


@app.command("rebuild-index")
def rebuild_index(data_dir: DataDir = None, output: Output = OutputFormat.TEXT) -> None:
    """Drop the index of contract events and read it again from the deploy block. Run it while the
    service is stopped (the embedded chain has one writer)."""
    service = _open_stopped_service(data_dir)
    try:
        indexed = service.indexer.rebuild()
        last = service.indexer.last_block()
    finally:
        service.close()
    console.print(f"indexed {indexed} events up to block {last}")
    if output is OutputFormat.JSON:
        emit_json({"events": indexed, "lastBlock": last})


@app.command("export-index")
def export_index_command(
    target: Annotated[Path, typer.Argument(help="the SQLite file to write (must not exist)")],
    data_dir: DataDir = None,
    output: Output = OutputFormat.TEXT,
) -> None:
    """Write a consistent copy of the store (records, batches, chain index, access log) as one SQLite
    file, for ``careledger-audit audit --index``. Safe while the service runs, on either store."""
    settings = _settings(data_dir)
    url = settings.database_url.get_secret_value() if settings.database_url else None
    try:
        db = open_database(Path(settings.data_dir), url=url, read_only=url is None)
        try:
            copied = export_index(db, target)
        finally:
            db.close()
    except LedgerError as err:
        console.print(f"[red]{err.code}[/]: {err.message}")
        raise typer.Exit(1) from err
    console.print(f"wrote {escape(str(target))}: " + ", ".join(f"{rows} {table}" for table, rows in copied.items()))
    if output is OutputFormat.JSON:
        emit_json({"path": str(target), "rows": copied})


if __name__ == "__main__":
    app()
