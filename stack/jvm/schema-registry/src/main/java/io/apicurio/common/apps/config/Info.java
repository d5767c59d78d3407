package io.apicurio.common.apps.config;

import jakarta.enterprise.util.Nonbinding;
import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Compatibility shim for the local stack's build of Apicurio Registry 3.0.9.
 *
 * <p>Maven Central does not carry {@code apicurio-registry-config-definitions:3.0.9}; the nearest
 * published version (3.0.6) declares this documentation annotation with a {@code String category},
 * while the 3.0.9 classes use an enum ({@link ConfigPropertyCategory}). This declaration has the
 * members the 3.0.9 classes use; the 3.0.6 copy is removed from the application by
 * {@code quarkus.class-loading.removed-resources} in application.properties. The annotation only
 * carries documentation metadata (it is {@code @Nonbinding} and changes no behaviour).
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.FIELD, ElementType.METHOD})
public @interface Info {
  @Nonbinding
  ConfigPropertyCategory category() default ConfigPropertyCategory.CATEGORY_SYSTEM;

  @Nonbinding
  String description() default "";

  @Nonbinding
  String availableSince() default "";

  @Nonbinding
  String registryAvailableSince() default "";

  @Nonbinding
  String studioAvailableSince() default "";

  @Nonbinding
  String[] seeAlso() default {};

  @Nonbinding
  String[] dependsOn() default {};
}
