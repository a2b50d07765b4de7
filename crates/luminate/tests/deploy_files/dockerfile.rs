//! The container image as its Dockerfile describes it: the stages and their instructions, and the
//! final stage's command, environment, user, volume and the files it copies from the build context.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{path, read, repo, yaml};

/// The Dockerfile of Luminate's image.
pub const DOCKERFILE: &str = "deploy/docker/Dockerfile";

/// One stage of a Dockerfile: its instructions in order, `(INSTRUCTION, arguments)`, continuation
/// lines joined and comments left out.
pub fn stages(text: &str) -> Vec<Vec<(String, String)>> {
    let mut logical: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut out: Vec<Vec<(String, String)>> = Vec::new();
    for line in logical {
        let (instruction, arguments) = line.split_once(' ').unwrap_or((&line, ""));
        let instruction = instruction.to_ascii_uppercase();
        if instruction == "FROM" {
            out.push(Vec::new());
        }
        out.last_mut()
            .expect("a Dockerfile starts with FROM")
            .push((instruction, arguments.trim().to_owned()));
    }
    out
}

/// The arguments of the stage's last `instruction` (Docker keeps the last ENTRYPOINT, CMD, ...).
pub fn last<'a>(stage: &'a [(String, String)], instruction: &str) -> &'a str {
    stage
        .iter()
        .rev()
        .find(|(i, _)| i == instruction)
        .map(|(_, a)| a.as_str())
        .unwrap_or_else(|| panic!("the final stage has no {instruction}"))
}

/// An exec-form (JSON array) argument: the shell form would run under `/bin/sh -c`, which the
/// slim image has but which would also swallow signals.
pub fn exec_form(arguments: &str, instruction: &str) -> Vec<String> {
    serde_json::from_str(arguments)
        .unwrap_or_else(|e| panic!("{instruction} is not in exec form ({e}): {arguments}"))
}

/// `ENV A=1 B="2 3"` → the pairs, over every ENV of the stage (later wins).
pub fn env_of(stage: &[(String, String)]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (_, arguments) in stage.iter().filter(|(i, _)| i == "ENV") {
        let mut rest = arguments.as_str();
        while !rest.is_empty() {
            let (key, after) = rest
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV {arguments}: only the KEY=VALUE form is read here"));
            let (value, after) = match after.strip_prefix('"') {
                Some(quoted) => {
                    let end = quoted.find('"').expect("closing quote");
                    (&quoted[..end], &quoted[end + 1..])
                }
                None => after.split_once(' ').unwrap_or((after, "")),
            };
            out.insert(key.trim().to_owned(), value.to_owned());
            rest = after.trim_start();
        }
    }
    out
}

/// What the image is, as read from its Dockerfile.
pub struct Image {
    pub build: Vec<(String, String)>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// The `EXPOSE`d ports, in order: the HTTP API first.
    pub exposed_ports: Vec<u16>,
    pub user: String,
    pub workdir: String,
    pub volume: String,
    /// Container path → repository file, for each `COPY` from the build context.
    pub copied: BTreeMap<String, PathBuf>,
}

pub fn image() -> Image {
    let stages = stages(&read(DOCKERFILE));
    assert_eq!(stages.len(), 2, "a build stage and the final stage");
    let stage = stages.last().unwrap();
    let volumes = exec_form(last(stage, "VOLUME"), "VOLUME");
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    let copied = stage
        .iter()
        .filter(|(i, a)| i == "COPY" && !a.starts_with("--from"))
        .map(|(_, a)| {
            let (source, target) = a.split_once(' ').expect("COPY SOURCE TARGET");
            let source = path(source);
            assert!(source.is_file(), "COPY {a}: no {}", source.display());
            (target.trim().to_owned(), source)
        })
        .collect();
    Image {
        build: stages[0].clone(),
        entrypoint: exec_form(last(stage, "ENTRYPOINT"), "ENTRYPOINT"),
        cmd: exec_form(last(stage, "CMD"), "CMD"),
        env: env_of(stage),
        exposed_ports: last(stage, "EXPOSE")
            .split_whitespace()
            .map(|port| port.parse().unwrap())
            .collect(),
        user: last(stage, "USER").to_owned(),
        workdir: last(stage, "WORKDIR").to_owned(),
        volume: volumes[0].clone(),
        copied,
    }
}

impl Image {
    /// The image's environment, with each path of a copied file replaced by the file in the repository.
    pub fn environment(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|(key, value)| {
                let value = match self.copied.get(value) {
                    Some(file) => file.to_str().unwrap().to_owned(),
                    None => value.clone(),
                };
                (key.clone(), value)
            })
            .collect()
    }

    /// The configuration file the image points `LUMINATE_CONFIG` at.
    pub fn config_file(&self) -> yaml_rust2::Yaml {
        let file = &self.copied[&self.env["LUMINATE_CONFIG"]];
        let relative = file.strip_prefix(repo()).unwrap();
        yaml(relative.to_str().unwrap())
    }
}
