import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * nginx as the reference proxy of bench:overhead: one process (master_process off: the one event
 * loop a single nginx worker runs, and nothing left behind if the bench is killed), keep-alive
 * connections to the upstream, no access log, every path it writes in the bench's tmp dir.
 */
export function nginxConfig(dir: string, port: number, upstreamPort: number): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
lock_file ${dir}/nginx.lock;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream model {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    # nginx closes a keep-alive connection after 1000 requests by default; Node never does.
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://model;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/** Writes nginx's config into a prefix of its own under `tmp`; the arguments that start it there. */
export function nginxArgs(tmp: string, regime: string, port: number, upstreamPort: number): string[] {
  const dir = path.join(tmp, `nginx-${regime}`);
  mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(dir, port, upstreamPort));
  // -e: the error log before the config is read (the built-in path may not be writable).
  return ['-p', dir, '-c', conf, '-e', 'stderr'];
}
