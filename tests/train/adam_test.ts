import assert from "node:assert/strict";
import { assertClose } from "../../src/tensor/compare.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { Adam, type AdamOptions } from "../../src/train/adam.ts";

// Expected values: an independent Python scalar loop of PyTorch's Adam formula
// (float64 per element, p/m/v stored as numpy float32), gradient g = p^3 - 0.5 (rounded to
// float32) plus weight_decay * p, betas 0.9/0.999, eps 1e-8:
//   m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2
//   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
// Bound: 1e-6 relative (a few float32 ulps; the two loops may differ in rounding order).
const EXPECTED = {
  plain: {
    lr: 0.1,
    weightDecay: 0,
    steps: [
      {
        w: [0.6000000238418579, -0.8999999761581421, 1.899999976158142],
        b: [0.20000000298023224, 0.8499999642372131],
      },
      {
        w: [0.698346734046936, -0.8010046482086182, 1.8007649183273315],
        b: [0.2999606728553772, 0.826423168182373],
      },
      {
        w: [0.7908598780632019, -0.7035849094390869, 1.7028628587722778],
        b: [0.3997489809989929, 0.7829152345657349],
      },
    ],
    m: {
      w: [-0.07187745720148087, -0.3335031270980835, 1.7137538194656372],
      b: [-0.13200007379055023, 0.01038577500730753],
    },
    v: {
      w: [0.0002463354030624032, 0.004782489500939846, 0.125043585896492],
      b: [0.0007140642846934497, 2.325357127119787e-05],
    },
  },
  decay: {
    lr: 0.05,
    weightDecay: 0.1,
    steps: [
      {
        w: [0.550000011920929, -0.949999988079071, 1.9500000476837158],
        b: [0.15000000596046448, 0.7999998331069946],
      },
      {
        w: [0.599653422832489, -0.9001842737197876, 1.9001435041427612],
        b: [0.1999787539243698, 0.7639511823654175],
      },
      {
        w: [0.648481011390686, -0.8506709933280945, 1.8505313396453857],
        b: [0.24991202354431152, 0.7293575406074524],
      },
    ],
    m: {
      w: [-0.0738421231508255, -0.3922603726387024, 1.9186456203460693],
      b: [-0.13015572726726532, 0.010252183303236961],
    },
    v: {
      w: [0.00023332738783210516, 0.006403157487511635, 0.15258121490478516],
      b: [0.0006931620882824063, 8.960433660831768e-06],
    },
  },
};

function problem() {
  const w = new Float32Array([0.5, -1, 2]);
  const b = new Tensor("f32", [1, 2], new Float32Array([0.1, 0.75]));
  return { w, b };
}
const gradOf = (p: Float32Array) => Float32Array.from(p, (x) => x ** 3 - 0.5);

for (const [label, exp] of Object.entries(EXPECTED)) {
  Deno.test(`Adam matches PyTorch's formula for 3 steps (${label})`, () => {
    const { w, b } = problem();
    const opt = new Adam(new Map<string, Float32Array | Tensor<"f32">>([["w", w], ["b", b]]), {
      lr: exp.lr,
      weightDecay: exp.weightDecay,
    });
    exp.steps.forEach((want, i) => {
      opt.step({ w: gradOf(w), b: gradOf(b.data) });
      assertClose(w, want.w, 1e-6, `${label} w after step ${i + 1}`);
      assertClose(b, want.b, 1e-6, `${label} b after step ${i + 1}`);
    });
    assert.equal(opt.stepCount, 3);
    const s = opt.state();
    assertClose(s.tensors["exp_avg.w"], exp.m.w, 1e-6, "exp_avg.w");
    assertClose(s.tensors["exp_avg.b"], exp.m.b, 1e-6, "exp_avg.b");
    assertClose(s.tensors["exp_avg_sq.w"], exp.v.w, 1e-6, "exp_avg_sq.w");
    assertClose(s.tensors["exp_avg_sq.b"], exp.v.b, 1e-6, "exp_avg_sq.b");
    assert.deepEqual(s.tensors["exp_avg.b"].shape, [1, 2], "moments keep the parameter's shape");
  });
}

Deno.test("Adam step 1 moves by lr * g / (|g| + eps) (closed form: bias correction is exact at t = 1)", () => {
  const g = [0.3, -2, 1e-9];
  const p = new Float32Array([1, 1, 1]);
  new Adam({ p }, { lr: 0.01 }).step({ p: new Float32Array(g) });
  const want = g.map((x) => 1 - 0.01 * Math.fround(x) / (Math.abs(Math.fround(x)) + 1e-8));
  assertClose(p, want, 1e-7, "first step");
});

Deno.test("Adam state() -> JSON step + tensors -> load() resumes exactly", () => {
  const opts: AdamOptions = { lr: 0.1, weightDecay: 0.01 };
  const a = problem(), c = problem();
  const full = new Adam(a, opts), first = new Adam(c, opts);
  for (let i = 0; i < 2; i++) {
    full.step({ w: gradOf(a.w), b: gradOf(a.b.data) });
    first.step({ w: gradOf(c.w), b: gradOf(c.b.data) });
  }
  const saved = first.state();
  const step = JSON.parse(JSON.stringify({ step: saved.step })).step;
  const resumed = { w: c.w.slice(), b: new Tensor("f32", [1, 2], c.b.data.slice()) };
  const second = new Adam(resumed, opts);
  second.load({ step, tensors: saved.tensors });
  assert.equal(second.stepCount, 2);
  full.step({ w: gradOf(a.w), b: gradOf(a.b.data) });
  second.step({ w: gradOf(resumed.w), b: gradOf(resumed.b.data) });
  assert.deepEqual(Array.from(resumed.w), Array.from(a.w), "bit-identical after resume");
  assert.deepEqual(Array.from(resumed.b.data), Array.from(a.b.data));
  // state() is a snapshot, not a live view
  saved.tensors["exp_avg.w"].data[0] = 123;
  assert.notEqual(first.state().tensors["exp_avg.w"].data[0], 123);
});

Deno.test("Adam errors name the parameter or state tensor", () => {
  const opt = new Adam({ w: new Float32Array(2) });
  assert.throws(() => opt.step({}), /missing gradient for parameter 'w'/);
  assert.throws(
    () => opt.step({ w: new Float32Array(2), x: new Float32Array(1) }),
    /gradient 'x' has no parameter/,
  );
  assert.throws(
    () => opt.step({ w: new Float32Array(3) }),
    /gradient 'w' has 3 elements, parameter has 2/,
  );
  assert.throws(
    () => new Adam({ w: new Tensor("f64", [1], new Float64Array(1)) as never }),
    /parameter 'w' must be/,
  );
  assert.throws(() => new Adam({}, { beta2: 1 }), /betas must be < 1/);
  assert.throws(() => opt.load({ step: 1, tensors: {} }), /'exp_avg.w' is missing/);
  const good = opt.state();
  assert.throws(
    () => opt.load({ step: 1, tensors: { ...good.tensors, extra: good.tensors["exp_avg.w"] } }),
    /unexpected state tensor 'extra'/,
  );
  assert.throws(() => opt.load({ ...good, step: -1 }), /step must be an integer/);
  assert.throws(
    () =>
      opt.load({
        step: 0,
        tensors: { ...good.tensors, "exp_avg_sq.w": new Tensor("f32", [3], new Float32Array(3)) },
      }),
    /'exp_avg_sq.w' is f32\[3\], expected f32 with 2 elements/,
  );
});
