/** A model version directory that must not be served; the message names the directory and the problem. */
export class ModelLoadError extends Error {
  constructor(
    readonly directory: string,
    readonly problem: string,
  ) {
    super(`cannot serve model version ${directory}: ${problem}`);
    this.name = new.target.name;
  }
}
