// Harness for tests/test_interop_magenta.py: run @magenta/sketch on a .gen.json model.
//
// usage: node magenta_pdf.js MODEL.gen.json INPUTS.json OUT.json
//   INPUTS.json: list of stroke-5 input rows [dx, dy, p1, p2, p3] in data units, the first
//   normally the start token [0, 0, 1, 0, 0]. For each row the harness calls
//   state = model.update(row, state) then model.getPDF(state, 1.0, 1.0) and records
//   pi, muX, muY, sigmaX, sigmaY, corr, pen (temperature 1 = the raw mixture density).
//
// Notes on the @magenta/sketch 0.2.0 API (es5/sketch_rnn/model.js):
//  * initialize() fetch()es a URL; we read the file ourselves and call the same
//    instantiateFromJSON(info, dims, weights) that initialize() calls.
//  * update() divides dx, dy by scale_factor / pixelFactor with pixelFactor 2 by default;
//    setPixelFactor(1.0) makes the divisor the file's scale_factor (data units).
//  * getPDF's sigmaY is sliced as result.slice(4*N, 15*N) (a typo upstream), so it holds
//    sigmaY followed by corr and pen; only its first N entries are sigmaY.
'use strict';
const fs = require('fs');
const ms = require('@magenta/sketch');

async function main() {
  const [modelPath, inputsPath, outPath] = process.argv.slice(2);
  if (!modelPath || !inputsPath || !outPath) {
    console.error('usage: node magenta_pdf.js MODEL.gen.json INPUTS.json OUT.json');
    process.exit(2);
  }
  const tf = ms.tf;
  await tf.setBackend('cpu');
  const doc = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
  const inputs = JSON.parse(fs.readFileSync(inputsPath, 'utf8'));
  const model = new ms.SketchRNN(modelPath);
  model.instantiateFromJSON(doc[0], doc[1], doc[2]);
  model.setPixelFactor(1.0);
  const N = 20;
  let state = model.zeroState();
  const steps = [];
  for (const row of inputs) {
    state = model.update(row, state);
    const pdf = model.getPDF(state, 1.0, 1.0);
    steps.push({
      pi: Array.from(pdf.pi),
      muX: Array.from(pdf.muX),
      muY: Array.from(pdf.muY),
      sigmaX: Array.from(pdf.sigmaX),
      sigmaY: Array.from(pdf.sigmaY.slice(0, N)),
      corr: Array.from(pdf.corr),
      pen: Array.from(pdf.pen),
    });
  }
  const result = {
    backend: tf.getBackend(),
    tfjs_version: tf.version_core || (tf.version && tf.version['tfjs-core']),
    num_units: model.numUnits,
    scale_factor: model.scaleFactor,
    steps: steps,
  };
  fs.writeFileSync(outPath, JSON.stringify(result));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
