#!/usr/bin/env python3
"""A minimal Hugging Face Hub on 127.0.0.1 for tools/check_hf_interop.sh (stdlib only).

Serves the files of local folders as model repos, speaking what huggingface_hub and densecap use:
  GET  /api/models/{repo}/revision/{rev}[?blobs=true]  -> {"sha", "siblings": [{"rfilename", "size", "blobId", "lfs"}]}
  GET  /api/models/{repo}/tree/{rev}[?recursive=...]   -> [{"type", "oid", "size", "path", "lfs"}]
  HEAD/GET /{repo}/resolve/{rev}/{path}                 -> git files: 200 with ETag (git blob sha1), X-Repo-Commit;
                                                           *.safetensors (LFS): 302 to another port's
                                                           /lfs/{sha256} with
                                                           X-Linked-Etag, X-Linked-Size
  GET  /lfs/{sha256}                                    -> the bytes, with Range support
Every request is appended to --log as "METHOD PATH RANGE".

usage: hf_interop_server.py --port-file F --log L REPO_ID=FOLDER [...]
"""
import argparse
import hashlib
import http.server
import json
import os
import threading
import urllib.parse

COMMIT = "5e7a1b2c3d4e5f60718293a4b5c6d7e8f9012345"


def load(folder):
    files = {}
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, folder).replace(os.sep, "/")
            data = open(full, "rb").read()
            blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            files[rel] = {"data": data, "blob": blob, "sha256": hashlib.sha256(data).hexdigest(),
                          "lfs": rel.endswith(".safetensors")}
    return files


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("repos", nargs="+")
    args = parser.parse_args()
    repos = {spec.split("=", 1)[0]: load(spec.split("=", 1)[1]) for spec in args.repos}
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send(self, status, headers, body=b""):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            if not any(k.lower() == "content-length" for k, _ in headers):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def ranged(self, data, headers):
            headers = headers + [("Accept-Ranges", "bytes")]
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                start_s, _, end_s = rng[6:].partition("-")
                start = int(start_s or 0)
                end = min(int(end_s), len(data) - 1) if end_s else len(data) - 1
                if start >= len(data):
                    return self.send(416, headers + [("Content-Range", "bytes */%d" % len(data))])
                return self.send(206, headers + [("Content-Range", "bytes %d-%d/%d" % (start, end, len(data)))],
                                 data[start:end + 1])
            self.send(200, headers, data)

        def error(self, status, code):
            self.send(status, [("X-Error-Code", code), ("Content-Type", "application/json")],
                      json.dumps({"error": code}).encode())

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            with lock:
                with open(args.log, "a") as log:
                    log.write("%s %s %s\n" % (self.command, self.path, self.headers.get("Range", "")))
            url = urllib.parse.urlsplit(self.path)
            parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
            if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] in ("revision", "tree"):
                repo = "/".join(parts[2:4])
                if repo not in repos:
                    return self.error(404, "RepoNotFound")
                if parts[5] not in ("main", COMMIT):
                    return self.error(404, "RevisionNotFound")
                files = repos[repo]
                if parts[4] == "revision":
                    siblings = []
                    for path, f in files.items():
                        entry = {"rfilename": path, "size": len(f["data"]), "blobId": f["blob"]}
                        if f["lfs"]:
                            entry["lfs"] = {"size": len(f["data"]), "sha256": f["sha256"], "pointerSize": 134}
                        siblings.append(entry)
                    body = {"id": repo, "modelId": repo, "sha": COMMIT, "private": False, "siblings": siblings}
                else:
                    body, dirs = [], set()
                    for path, f in files.items():
                        for i in range(1, path.count("/") + 1):
                            dirs.add("/".join(path.split("/")[:i]))
                        entry = {"type": "file", "oid": f["blob"], "size": len(f["data"]), "path": path}
                        if f["lfs"]:
                            entry["lfs"] = {"oid": f["sha256"], "size": len(f["data"]), "pointerSize": 134}
                        body.append(entry)
                    body += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in sorted(dirs)]
                return self.send(200, [("Content-Type", "application/json")], json.dumps(body).encode())
            if len(parts) >= 5 and parts[2] == "resolve":
                repo, path = "/".join(parts[:2]), "/".join(parts[4:])
                if repo not in repos:
                    return self.error(404, "RepoNotFound")
                f = repos[repo].get(path)
                if f is None:
                    return self.send(404, [("X-Error-Code", "EntryNotFound"), ("X-Repo-Commit", COMMIT)])
                if f["lfs"]:
                    return self.send(302, [("Location", "http://127.0.0.1:%d/lfs/%s" % (lfs.server_address[1], f["sha256"])), ("X-Repo-Commit", COMMIT),
                                           ("X-Linked-Etag", '"%s"' % f["sha256"]),
                                           ("X-Linked-Size", str(len(f["data"]))), ("ETag", '"%s"' % f["blob"]),
                                           ("Content-Length", "0")])
                return self.ranged(f["data"], [("X-Repo-Commit", COMMIT), ("ETag", '"%s"' % f["blob"])])
            if len(parts) == 2 and parts[0] == "lfs":
                for files in repos.values():
                    for f in files.values():
                        if f["sha256"] == parts[1]:
                            return self.ranged(f["data"], [("ETag", '"%s"' % f["sha256"])])
            self.error(404, "NotFound")

    # LFS files redirect to a second port: another host for the client (no token goes there).
    lfs = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=lfs.serve_forever, daemon=True).start()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
