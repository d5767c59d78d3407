import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";

/**
 * A CA of the test's own and a certificate it signed for `name` (valid a day), made with openssl
 * in `dir`: `ca.pem`, `<name>.key` and `<name>.pem`, for a second server reached over TLS as a
 * managed service with a private CA would be.
 */
export function testCertificates(
  dir: string,
  { name = "server", altNames = "DNS:localhost" }: { name?: string; altNames?: string } = {},
): { ca: string; key: string; cert: string } {
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=switchboard test CA",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
  );
  openssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=localhost",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
  );
  writeFileSync(path.join(dir, "san.cnf"), `subjectAltName=${altNames}\n`);
  openssl(
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    "san.cnf",
    "-out",
    `${name}.pem`,
  );
  return { ca: path.join(dir, "ca.pem"), key: path.join(dir, `${name}.key`), cert: path.join(dir, `${name}.pem`) };
}
