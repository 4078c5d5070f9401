"""cdp.py -- headless Chromium (Debian's chromium package) driven through
the Chrome DevTools Protocol over a WebSocket, with the standard library
only: the browser tests of the web console (tests/e2e/test_console.py).

    b = Browser(tap).start()          # chromium --headless, its own profile
    p = b.page()                      # the first tab, over its WebSocket
    p.call("Page.navigate", url=...)
    p.wait("document.readyState == 'complete'")
    p.eval("1 + 1")                   # Runtime.evaluate, awaited, by value
    p.press("Tab"); p.type("hello"); p.screenshot(path)
    b.stop()                          # by its pid (and its process group)

Every event the page sends is kept in p.events (method, params), so a test
can read the network requests it made (Network.requestWillBeSent)."""
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request


class WebSocket:
    """A client WebSocket (RFC 6455) for text messages: enough for CDP."""

    def __init__(self, url, timeout=30):
        assert url.startswith("ws://"), url
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n" % (path, hostport, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise IOError("the WebSocket handshake was cut")
            head += chunk
        head, _, self.rest = head.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise IOError("WebSocket handshake refused: %r" % head[:200])

    def _read(self, n):
        while len(self.rest) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise IOError("the WebSocket closed")
            self.rest += chunk
        out, self.rest = self.rest[:n], self.rest[n:]
        return out

    def _frame(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def send(self, text):
        self._frame(1, text.encode())

    def recv(self):
        """The next whole text message (pings answered, fragments joined)."""
        data = b""
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 9:
                self._frame(10, payload)
                continue
            if opcode == 8:
                raise IOError("the WebSocket was closed by the browser")
            if opcode in (0, 1, 2):
                data += payload
                if b0 & 0x80:
                    return data.decode()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class CdpError(Exception):
    pass


class Page:
    """One tab: CDP calls, the events it sent, and input helpers."""

    def __init__(self, ws_url):
        self.ws = WebSocket(ws_url)
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise CdpError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append((msg["method"], msg.get("params", {})))

    def eval(self, expr):
        """The value of a JavaScript expression (a promise is awaited)."""
        r = self.call("Runtime.evaluate", expression=expr, awaitPromise=True,
                      returnByValue=True, userGesture=True)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CdpError("%s: %s" % (expr[:80], d.get("exception", {}).get("description") or d.get("text")))
        return r.get("result", {}).get("value")

    def wait(self, expr, timeout=15, interval=0.05):
        """Poll expr until it is truthy; its value, or None at the timeout."""
        deadline = time.time() + timeout
        while True:
            v = self.eval(expr)
            if v:
                return v
            if time.time() > deadline:
                return None
            time.sleep(interval)

    KEYS = {"Enter": (13, "\r"), "Tab": (9, ""), "Escape": (27, ""),
            "ArrowDown": (40, ""), "ArrowUp": (38, ""), "Space": (32, " ")}

    def press(self, key, shift=False):
        code, text = self.KEYS[key]
        mods = 8 if shift else 0
        base = {"key": " " if key == "Space" else key, "code": key,
                "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code, "modifiers": mods}
        self.call("Input.dispatchKeyEvent", type="keyDown", text=text, **base)
        self.call("Input.dispatchKeyEvent", type="keyUp", **base)

    def type(self, text):
        self.call("Input.insertText", text=text)

    def screenshot(self, path):
        r = self.call("Page.captureScreenshot", format="png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))
        return path

    def close(self):
        self.ws.close()


class Browser:
    """chromium --headless with a profile of its own, on a loopback port."""

    def __init__(self, tap=None, size="1280,900"):
        self.tap = tap
        self.size = size
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="ingen-chromium-")
        self.exe = shutil.which("chromium") or shutil.which("chromium-browser")

    def start(self, timeout=30):
        if self.exe is None:
            raise RuntimeError("chromium is not installed (Debian package chromium)")
        args = [self.exe, "--headless", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps", "--mute-audio",
                "--password-store=basic", "--use-mock-keychain",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                "--user-data-dir=" + self.dir, "--window-size=" + self.size, "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        self.log = open(os.path.join(self.dir, "chromium.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        if self.tap is not None:
            self.tap.at_exit(self.stop)
        port_file = os.path.join(self.dir, "DevToolsActivePort")
        deadline = time.time() + timeout
        self.port = None
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError("chromium exited with %s: %s" % (self.proc.returncode, self.log_text()[-2000:]))
            try:
                with open(port_file) as f:
                    first = f.readline().strip()
                if first:
                    self.port = int(first)
            except (OSError, ValueError):
                time.sleep(0.1)
        if self.port is None:
            raise RuntimeError("chromium gave no DevTools port in %d s: %s" % (timeout, self.log_text()[-2000:]))
        return self

    def log_text(self):
        try:
            with open(os.path.join(self.dir, "chromium.log"), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def version(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/json/version" % self.port, timeout=10) as r:
            return json.loads(r.read())

    def page(self, timeout=15):
        deadline = time.time() + timeout
        while True:
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % self.port, timeout=10) as r:
                targets = json.loads(r.read())
            pages = [x for x in targets if x.get("type") == "page"]
            if pages:
                return Page(pages[0]["webSocketDebuggerUrl"])
            if time.time() > deadline:
                raise RuntimeError("chromium has no page target")
            time.sleep(0.1)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
