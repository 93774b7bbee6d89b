// Validates rendered kustomizations offline against the Kubernetes API schemas of the npm
// package kubernetes-models: every object's apiVersion/kind must be a known model, and the
// object must pass the model's schema validation. Those schemas allow unknown fields, which is
// where a typo (`readinesProbe`) would hide, so every field is also looked up in the model's
// type declarations (the package's .d.ts files): an unknown field is an error.
//
//   node validate.js [--json=rendered.json] deploy/k8s/base deploy/k8s/overlays/gpu-learner
//
// Prints one line per object and a summary; exit 1 on any error. --json writes
// {"<folder>": [objects...]} for further checks (tests/cluster/k8s_test.py).
"use strict";
const fs = require("fs");
const path = require("path");
const { render } = require("./render");

const MODELS = path.dirname(require.resolve("kubernetes-models/package.json"));

// "apps/v1" + "StatefulSet" -> the model module; "v1" is the core group.
function modelPath(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : [null, apiVersion];
  return path.join(MODELS, group ? `${group}/${version}` : version, kind);
}

// Fields of a .d.ts interface, each with the .d.ts file describing its value (null for
// scalars and free-form maps): {field: {file, array}}.
const declarations = new Map();
function fieldsOf(dtsFile) {
  if (declarations.has(dtsFile)) return declarations.get(dtsFile);
  const text = fs.readFileSync(dtsFile, "utf8");
  const imports = {};
  for (const m of text.matchAll(/import \{ ([^}]+) \} from "([^"]+)";/g)) {
    for (const name of m[1].split(",").map((s) => s.trim())) {
      imports[name.split(" as ").pop()] = m[2].startsWith(".")
        ? path.resolve(path.dirname(dtsFile), m[2]) + ".d.ts"
        : require.resolve(m[2]).replace(/\.js$/, ".d.ts");
    }
  }
  // The first interface is the model's own (I<Kind>); its fields are `"name"?: Type;`.
  const body = /export interface \w+(?: extends [\w, ]+)? \{([\s\S]*?)\n\}/.exec(text);
  const fields = {};
  if (body) {
    for (const m of body[1].matchAll(/^ {4}"([\w$.-]+)"\??: (.+)$/gm)) {
      const type = m[2].replace(/;$/, "");
      const ref = /^(?:Array<)?(I\w+)>?$/.exec(type);  // maps (`{`) and literals: no file
      fields[m[1]] = {
        file: ref && imports[ref[1]] ? imports[ref[1]] : null,
        array: type.startsWith("Array<"),
      };
    }
  }
  declarations.set(dtsFile, fields);
  return fields;
}

function unknownFields(value, dtsFile, where, out) {
  if (value === null || typeof value !== "object") return out;
  const fields = fieldsOf(dtsFile);
  if (Object.keys(fields).length === 0) return out;  // a scalar-like type (Quantity, IntOrString)
  for (const [k, v] of Object.entries(value)) {
    const f = fields[k];
    if (!f) {
      out.push(`${where}.${k}: unknown field (known: ${Object.keys(fields).join(", ")})`);
      continue;
    }
    if (!f.file) continue;
    if (f.array && Array.isArray(v)) v.forEach((item, i) => unknownFields(item, f.file, `${where}.${k}[${i}]`, out));
    else if (!f.array) unknownFields(v, f.file, `${where}.${k}`, out);
  }
  return out;
}

function validateObject(obj) {
  const errors = [];
  const modulePath = modelPath(obj.apiVersion || "", obj.kind || "");
  let Model;
  try {
    Model = require(modulePath)[obj.kind];
  } catch (e) {
    return [`no Kubernetes model for apiVersion ${obj.apiVersion}, kind ${obj.kind}`];
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    errors.push(e.message);
  }
  unknownFields(obj, `${modulePath}.d.ts`, obj.kind, errors);
  return errors;
}

function main(argv) {
  let jsonOut = null;
  const dirs = [];
  for (const a of argv) {
    if (a.startsWith("--json=")) jsonOut = a.slice("--json=".length);
    else dirs.push(a);
  }
  if (dirs.length === 0) {
    console.error("usage: node validate.js [--json=out.json] <kustomization folder>...");
    return 2;
  }
  let failed = 0;
  let count = 0;
  const rendered = {};
  for (const dir of dirs) {
    let objects;
    try {
      objects = render(dir);
    } catch (e) {
      console.log(`FAIL ${dir}: cannot render: ${e.message}`);
      failed++;
      continue;
    }
    rendered[dir] = objects;
    for (const obj of objects) {
      count++;
      const errors = validateObject(obj);
      const id = `${dir}: ${obj.apiVersion} ${obj.kind} ${obj.metadata && obj.metadata.name}`;
      if (errors.length) {
        failed++;
        console.log(`FAIL ${id}\n  ${errors.join("\n  ")}`);
      } else {
        console.log(`ok   ${id}`);
      }
    }
  }
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify(rendered, null, 1));
  console.log(`${count} objects, ${failed} invalid`);
  return failed ? 1 : 0;
}

if (require.main === module) process.exit(main(process.argv.slice(2)));
module.exports = { validateObject };
