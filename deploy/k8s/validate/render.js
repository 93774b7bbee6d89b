// Renders a kustomization the way `kubectl kustomize` does, for the subset deploy/k8s uses:
// `resources` (files, or folders holding a kustomization.yaml), `labels` (pairs added to every
// object's metadata.labels), `images` (newName/newTag by image name), `replicas`, and `patches`
// given as a strategic merge patch file with a kind/name target. Any other kustomization field
// is an error, so that the subset cannot silently fall behind the manifests.
//
//   node render.js deploy/k8s/overlays/gpu-learner > rendered.yaml
//
// Strategic merge, as Kubernetes defines it for the fields used here: maps merge recursively;
// lists whose items carry a merge key (containers, env, ports, volumes, volumeMounts,
// tolerations, ...) merge item by item; other lists are replaced; null deletes a key.
"use strict";
const fs = require("fs");
const path = require("path");
const yaml = require("js-yaml");

const SUPPORTED = new Set(["apiVersion", "kind", "resources", "labels", "images", "patches",
                           "replicas"]);
// Merge keys of the lists used in these manifests (from the Kubernetes API's
// x-kubernetes-patch-merge-key).
const MERGE_KEYS = {
  containers: "name", initContainers: "name", env: "name", envFrom: null, ports: "containerPort",
  volumes: "name", volumeMounts: "mountPath", tolerations: "key", volumeClaimTemplates: null,
};

function loadYamlFile(file) {
  return yaml.loadAll(fs.readFileSync(file, "utf8")).filter((d) => d != null);
}

function strategicMerge(base, patch, key) {
  if (patch === null) return undefined;
  if (Array.isArray(patch)) {
    const mergeKey = MERGE_KEYS[key];
    if (!mergeKey || !Array.isArray(base)) return patch;
    const out = base.map((item) => item);
    for (const p of patch) {
      const i = out.findIndex((b) => b && b[mergeKey] === p[mergeKey]);
      if (i >= 0) out[i] = strategicMerge(out[i], p, null);
      else out.push(p);
    }
    return out;
  }
  if (typeof patch === "object" && typeof base === "object" && base !== null && !Array.isArray(base)) {
    const out = { ...base };
    for (const [k, v] of Object.entries(patch)) {
      const merged = strategicMerge(base[k], v, k);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
    return out;
  }
  return patch;
}

// A patch's kind and name select its target; the rest of it is merged.
function withoutIdentity(patch) {
  const { apiVersion, kind, metadata, ...rest } = patch;
  const { name, namespace, ...meta } = metadata || {};
  return Object.keys(meta).length ? { ...rest, metadata: meta } : rest;
}

function podSpecs(obj) {
  const spec = obj.spec || {};
  if (spec.template && spec.template.spec) return [spec.template.spec];
  if (obj.kind === "Pod") return [spec];
  return [];
}

function setImage(image, rules) {
  const m = /^([^@:]+(?::\d+\/[^@:]+)?)(?::([^@]+))?(@.+)?$/.exec(image);
  const name = m ? m[1] : image;
  for (const r of rules) {
    if (r.name !== name) continue;
    const newName = r.newName || name;
    if (r.digest) return `${newName}@${r.digest}`;
    const tag = r.newTag || (m && m[2]);
    return tag ? `${newName}:${tag}` : newName;
  }
  return image;
}

function render(dir) {
  const kfile = path.join(dir, "kustomization.yaml");
  const k = loadYamlFile(kfile)[0];
  for (const field of Object.keys(k)) {
    if (!SUPPORTED.has(field)) throw new Error(`${kfile}: field '${field}' is not supported by render.js`);
  }
  let objects = [];
  for (const r of k.resources || []) {
    const p = path.join(dir, r);
    if (fs.statSync(p).isDirectory()) objects.push(...render(p));
    else objects.push(...loadYamlFile(p));
  }
  for (const patch of k.patches || []) {
    if (!patch.path || !patch.target) throw new Error(`${kfile}: patches need path and target`);
    const docs = loadYamlFile(path.join(dir, patch.path));
    const matches = objects.filter((o) => (!patch.target.kind || o.kind === patch.target.kind) &&
                                          (!patch.target.name || o.metadata.name === patch.target.name));
    if (matches.length === 0) throw new Error(`${kfile}: patch ${patch.path} matches no object`);
    objects = objects.map((o) => (matches.includes(o)
      ? docs.reduce((acc, d) => strategicMerge(acc, withoutIdentity(d), null), o)
      : o));
  }
  for (const r of k.replicas || []) {
    const o = objects.find((x) => x.metadata.name === r.name && x.spec && "replicas" in x.spec);
    if (!o) throw new Error(`${kfile}: replicas: no object named ${r.name}`);
    o.spec.replicas = r.count;
  }
  for (const l of k.labels || []) {
    for (const o of objects) o.metadata.labels = { ...(o.metadata.labels || {}), ...l.pairs };
  }
  for (const o of objects) {
    for (const spec of podSpecs(o)) {
      for (const c of [...(spec.containers || []), ...(spec.initContainers || [])]) {
        c.image = setImage(c.image, k.images || []);
      }
    }
  }
  return objects;
}

module.exports = { render, strategicMerge };

if (require.main === module) {
  if (process.argv.length !== 3) {
    console.error("usage: node render.js <folder with kustomization.yaml>");
    process.exit(2);
  }
  process.stdout.write(render(process.argv[2]).map((o) => yaml.dump(o, { lineWidth: 100 })).join("---\n"));
}
