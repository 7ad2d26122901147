// Runs one JavaScript program (CommonJS, as MultiPL-E's tests are) and proves that its tests completed.
//
// Usage: node run_node.js PROGRAM TESTS_LINE PROOF_FD, with a per-run secret line on standard input.
//
// The program runs as a CommonJS module whose wrapper takes one extra parameter, a function under a name made
// of random bytes for this run; a call to it is appended after the program's last line. When that call runs,
// the program's top level has run to its end, and the secret is written to PROOF_FD (a pipe to the executor,
// not stdout). A completion that calls process.exit(0) before the tests ran leaves no proof and does not pass.
// The guard is against accidental early exits: a program that reads its own source can learn the name.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');
const vm = require('node:vm');

function readSecret() {
  const buffer = Buffer.alloc(128);
  let length = 0;
  while (length === 0 || buffer[length - 1] !== 10) {
    let got = 0;
    try {
      got = fs.readSync(0, buffer, length, buffer.length - length, null);
    } catch (error) {
      if (error.code === 'EAGAIN') continue;
      throw error;
    }
    if (got === 0 || length + got >= buffer.length) {
      fs.writeSync(2, 'codequant harness: no secret on standard input\n');
      process.exit(2);
    }
    length += got;
  }
  return buffer.subarray(0, length);
}

function main() {
  const [file, testsLine, proofFd] = process.argv.slice(2);
  const secret = readSecret();
  const source = fs.readFileSync(file, 'utf8');
  const done = `__cq_done_${crypto.randomBytes(12).toString('hex')}`;
  let proven = false;
  const completed = () => {
    if (!proven) {
      proven = true;
      fs.writeSync(Number(proofFd), secret);
    }
  };
  // The wrapper starts on the program's first line, so line numbers in stack traces stay the program's own.
  const head = `(function (exports, require, module, __filename, __dirname, ${done}) {`;
  const tail = Number(testsLine) > 0 ? `\n;${done}();\n})` : '\n})';
  let wrapper;
  try {
    wrapper = vm.runInThisContext(head + source + tail, { filename: file });
  } catch (error) {
    if (error instanceof SyntaxError) {
      fs.writeSync(2, `codequant: the program does not compile\n${error.stack}\n`);
      process.exit(1);
    }
    throw error;
  }
  const module = new Module(file, null);
  module.filename = file;
  module.paths = Module._nodeModulePaths(path.dirname(file));
  const require = Module.createRequire(file);
  wrapper.call(module.exports, module.exports, require, module, file, path.dirname(file), completed);
}

main();
