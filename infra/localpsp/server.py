"""The local PSP's HTTPS server: Efí's token, send, ask and list endpoints, over mutual TLS.

Standard-library http.server (ThreadingHTTPServer, a thread per connection) and ssl: a test double
needs no framework, and the stdlib already gives per-connection threads and client-certificate checks.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import shapes
from .callbacks import Scheduler, Webhook
from .certs import ClientFiles, issue
from .faults import Fault, parse_faults
from .ledger import Ledger, Sent

SCOPES = "pix.send gn.pix.send.read"


@dataclass
class PspConfig:
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    token_expires_in: int = 3600
    latency_ms: int = 0  # added to every call
    confirm_delay_ms: int = 200  # from the 201 to REALIZADO / NAO_REALIZADO and its webhook
    webhook_url: str = ""
    webhook_mode: str = "normal"  # normal | lost | duplicate
    webhook_jitter_ms: int = 0  # each callback comes up to this much later: callbacks reorder
    webhook_retries: int = 3
    webhook_retry_ms: int = 1000
    webhook_batch_ms: int = 0  # >0: callbacks due within this window go out in one POST (up to 100 entries)
    hang_ms: int = 15_000  # a timeout:N fault holds the answer this long (longer than the client waits)
    retry_after_seconds: int = 1
    faults: str = ""
    url_file: Path | None = None
    seed: int | None = None  # of the webhook jitter


class LocalPsp:
    """Start with start(), stop with stop(); base_url and client_files say how to reach it."""

    def __init__(self, config: PspConfig) -> None:
        if config.webhook_mode not in ("normal", "lost", "duplicate"):
            raise ValueError("webhook_mode is normal, lost or duplicate")
        self.config = config
        self.faults: dict[int, Fault] = parse_faults(config.faults)
        self.tokens_issued = 0
        self._tokens: dict[str, float] = {}
        self._tokens_lock = threading.Lock()
        self._random = random.Random(config.seed)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.client_files: ClientFiles | None = None
        self.credentials: dict[str, str] = {}

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        return f"https://{self.config.host}:{self._server.server_address[1]}"

    def start(self) -> LocalPsp:
        state = Path(self.config.state_dir)
        context, self.client_files, self.credentials = issue(state, self.config.host)
        self.ledger = Ledger(state / "ledger.sqlite3")
        self.scheduler = Scheduler()
        self.webhook = Webhook(
            self.config.webhook_url,
            self.scheduler,
            self.config.webhook_retries,
            self.config.webhook_retry_ms / 1000,
            self.config.webhook_batch_ms / 1000,
        )
        self._server = _Server((self.config.host, self.config.port), _Handler, context, self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="localpsp", daemon=True)
        self._thread.start()
        if self.config.url_file is not None:
            Path(self.config.url_file).write_text(self.base_url + "\n")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.scheduler.stop()
        self.webhook.close()
        self.ledger.close()

    def __enter__(self) -> LocalPsp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def revoke_tokens(self) -> None:
        """Forget every token issued (a rotated secret): the next call with one answers 401."""
        with self._tokens_lock:
            self._tokens.clear()

    # -- token ------------------------------------------------------------------------------------

    def issue_token(self, authorization: str) -> tuple[int, dict[str, Any]]:
        expected = f"{self.credentials['client_id']}:{self.credentials['client_secret']}"
        given = ""
        if authorization.startswith("Basic "):
            try:
                given = base64.b64decode(authorization[6:], validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                given = ""
        if not secrets.compare_digest(given.encode(), expected.encode()):
            return 401, {"error": "invalid_client", "error_description": "Invalid or inactive credentials"}
        token = secrets.token_urlsafe(32)
        with self._tokens_lock:
            self._tokens[token] = time.monotonic() + self.config.token_expires_in
            self.tokens_issued += 1
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.config.token_expires_in,
            "scope": SCOPES,
        }

    def authorised(self, authorization: str) -> bool:
        token = authorization[7:] if authorization.startswith("Bearer ") else ""
        with self._tokens_lock:
            expires = self._tokens.get(token)
        return expires is not None and time.monotonic() < expires

    # -- sends ------------------------------------------------------------------------------------

    def send(self, id_envio: str, body: Any) -> tuple[int, dict[str, Any], dict[str, str], float]:
        """(status, body, headers, seconds to hold the answer) for PUT /v2/gn/pix/{idEnvio}."""
        if not shapes.ID_ENVIO_RE.fullmatch(id_envio):
            return shapes.error(400, "id_envio_invalido", "idEnvio deve seguir ^[a-zA-Z0-9]{1,35}$")
        problem = shapes.invalid_send(body)
        if problem:
            return shapes.error(400, *problem)
        cents = shapes.cents(body["valor"])
        fault = self.faults.get(cents)
        if self.ledger.by_id_envio(id_envio) is not None:
            return shapes.error(409, "id_envio_duplicado", "Já existe um Pix enviado com este idEnvio")
        attempt = self.ledger.count_attempt(id_envio)
        action = fault.action if fault else ""
        if action == "error" and attempt <= fault.number:  # type: ignore[union-attr]
            return shapes.error(500, "erro_aplicacao", "Erro interno ao processar a requisição")
        if action == "throttle" and attempt <= fault.number:  # type: ignore[union-attr]
            status, answer, _, _ = shapes.error(429, "limite_excedido", "Muitas requisições")
            return status, answer, {"Retry-After": str(self.config.retry_after_seconds)}, 0.0
        if action == "reject":
            code = fault.arg  # type: ignore[union-attr]
            return shapes.error(shapes.REJECTION_STATUS.get(code, 400), code, f"Envio recusado: {code}")
        sent = self.ledger.record(id_envio, cents, body["favorecido"]["chave"], body["pagador"]["chave"], shapes.now())
        if sent is None:  # an identical send won the race
            return shapes.error(409, "id_envio_duplicado", "Já existe um Pix enviado com este idEnvio")
        self.scheduler.later(self.config.confirm_delay_ms / 1000, lambda: self._settle(sent.id_envio, fault))
        hold = self.config.hang_ms / 1000 if action == "timeout" and attempt <= fault.number else 0.0  # type: ignore[union-attr]
        answer = {
            "idEnvio": sent.id_envio,
            "e2eId": sent.e2e_id,
            "valor": body["valor"],
            "horario": {"solicitacao": shapes.rfc3339(sent.requested_at)},
            "status": sent.status,
        }
        return 201, answer, {}, hold

    def latency(self, cents: int | None) -> float:
        fault = self.faults.get(cents) if cents is not None else None
        slow = fault.number if fault and fault.action == "slow" else 0
        return (self.config.latency_ms + slow) / 1000

    def ask(self, sent: Sent | None) -> tuple[int, dict[str, Any]]:
        if sent is None:
            return 404, {
                "type": "https://pix.bcb.gov.br/api/v2/error/PixEnviadoNaoEncontrado",
                "title": "Não Encontrado",
                "status": 404,
                "detail": "Pix enviado não encontrado para o identificador informado",
            }
        return 200, shapes.describe(sent)

    def listing(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        try:
            since = shapes.parse_time(query["inicio"][0])
            until = shapes.parse_time(query["fim"][0])
            page = int(query.get("paginacao.paginaAtual", ["0"])[0])
            per_page = int(query.get("paginacao.itensPorPagina", ["100"])[0])
        except (KeyError, ValueError, IndexError):
            return shapes.error(400, "parametros_invalidos", "inicio e fim (RFC 3339) são obrigatórios")[:2]
        if page < 0 or not 1 <= per_page <= 1000:
            return shapes.error(400, "parametros_invalidos", "paginação inválida")[:2]
        total, sends = self.ledger.between(since, until, page * per_page, per_page)
        return 200, {
            "parametros": {
                "inicio": shapes.rfc3339(since),
                "fim": shapes.rfc3339(until),
                "paginacao": {
                    "paginaAtual": page,
                    "itensPorPagina": per_page,
                    "quantidadeDePaginas": max(1, -(-total // per_page)),
                    "quantidadeTotalDeItens": total,
                },
            },
            "pix": [shapes.describe(sent) for sent in sends],
        }

    def _settle(self, id_envio: str, fault: Fault | None) -> None:
        failing = fault is not None and fault.action == "fail"
        code = fault.arg if failing and fault else None
        reason = shapes.SPI_REASONS.get(code or "", "Pagamento rejeitado pelo recebedor") if failing else None
        sent = self.ledger.settle(id_envio, "NAO_REALIZADO" if failing else "REALIZADO", shapes.now(), code, reason)
        if sent is None:
            return
        action = fault.action if fault else ""
        if self.config.webhook_mode == "lost" or action == "lost":
            return
        delay = (fault.number if action == "late" else 0) / 1000  # type: ignore[union-attr]
        if self.config.webhook_jitter_ms:
            delay += self._random.uniform(0, self.config.webhook_jitter_ms / 1000)
        body = {"pix": [shapes.callback_entry(sent)]}
        self.webhook.post(body, delay)
        if self.config.webhook_mode == "duplicate" or action == "duplicate":
            self.webhook.post(body, delay + 0.05)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], handler: type, context: ssl.SSLContext, psp: LocalPsp) -> None:
        super().__init__(address, handler)
        self.context = context
        self.psp = psp

    def get_request(self) -> tuple[Any, Any]:
        # The TLS handshake happens in the connection's own thread (_Handler.setup), not in the accept loop,
        # so a slow or refused client never holds up the others.
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # refused certificates, resets, clients that left
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections
    server: _Server

    def setup(self) -> None:
        self.request.settimeout(10)
        self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a bench's thousands of calls would flood the log

    def do_POST(self) -> None:
        psp = self.server.psp
        if urlsplit(self.path).path == "/oauth/token":
            self._read_body()
            status, body = psp.issue_token(self.headers.get("Authorization", ""))
            self._answer(status, body)
        elif self.path == "/_psp/revoke-tokens":
            psp.revoke_tokens()
            self._answer(204, None)
        else:
            self._answer(*shapes.error(404, "nao_encontrado", "Rota inexistente")[:2])

    def do_PUT(self) -> None:
        psp = self.server.psp
        path = urlsplit(self.path).path
        body = self._read_body()
        cents = shapes.cents(body.get("valor")) if isinstance(body, dict) else None
        time.sleep(psp.latency(cents))
        if not psp.authorised(self.headers.get("Authorization", "")):
            self._answer(*shapes.unauthorised())
            return
        if not path.startswith("/v2/gn/pix/") or path.count("/") != 4:
            self._answer(*shapes.error(404, "nao_encontrado", "Rota inexistente")[:2])
            return
        status, answer, headers, hold = psp.send(path.rsplit("/", 1)[1], body)
        if hold:
            time.sleep(hold)
        self._answer(status, answer, headers)

    def do_GET(self) -> None:
        psp = self.server.psp
        parts = urlsplit(self.path)
        time.sleep(psp.latency(None))
        if not psp.authorised(self.headers.get("Authorization", "")):
            self._answer(*shapes.unauthorised())
            return
        prefix = "/v2/gn/pix/enviados"
        if parts.path == prefix:
            self._answer(*psp.listing(parse_qs(parts.query)))
        elif parts.path.startswith(prefix + "/id-envio/"):
            self._answer(*psp.ask(psp.ledger.by_id_envio(parts.path.rsplit("/", 1)[1])))
        elif parts.path.startswith(prefix + "/") and parts.path.count("/") == 5:
            self._answer(*psp.ask(psp.ledger.by_e2e(parts.path.rsplit("/", 1)[1])))
        else:
            self._answer(*shapes.error(404, "nao_encontrado", "Rota inexistente")[:2])

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        content_type = "application/problem+json" if status == 404 and "type" in (body or {}) else "application/json"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
