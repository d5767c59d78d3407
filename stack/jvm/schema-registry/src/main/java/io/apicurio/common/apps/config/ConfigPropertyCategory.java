package io.apicurio.common.apps.config;

/**
 * Compatibility shim, see {@link Info}: the categories that Apicurio Registry 3.0.9's classes put on
 * their configuration properties. Only the constant names matter (they are metadata for the
 * registry's configuration index); the list is exactly the set the 3.0.9 jars refer to.
 */
public enum ConfigPropertyCategory {
  CATEGORY_API,
  CATEGORY_AUTH,
  CATEGORY_CACHE,
  CATEGORY_CCOMPAT,
  CATEGORY_DOWNLOAD,
  CATEGORY_GITOPS,
  CATEGORY_HEALTH,
  CATEGORY_IMPORT,
  CATEGORY_LIMITS,
  CATEGORY_REDIRECTS,
  CATEGORY_REST,
  CATEGORY_SEMVER,
  CATEGORY_STORAGE,
  CATEGORY_SYSTEM,
  CATEGORY_UI,
}
